"""The team deployment's files as the tests read them: deploy/compose.yaml with Compose's variable interpolation
applied, the `searchlm` command lines of deploy/Dockerfile, and deploy/Caddyfile pointed at local replicas."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CADDYFILE = DEPLOY / "Caddyfile"
DOCKERFILE = DEPLOY / "Dockerfile"

# What a user exports before `docker compose up` (the variables the file requires).
USER_ENV = {"DOCS_FOLDER": "/home/team/docs", "SEARCHLM_TOKEN": "0123456789abcdef0123456789abcdef",
            "SEARCHLM_ALLOWED_HOSTS": "search.example.com"}
# The replicas' upstream in the Caddyfile: Docker's DNS name of the `search` service, its port.
UPSTREAM = re.compile(r"dynamic a (\S+) (\d+) \{[^}]*\}")


class MissingVariable(ValueError):
    pass


def interpolate(text: str, env: dict) -> str:
    """Compose's interpolation (compose-go's template package): $$, $NAME, ${NAME}, ${NAME:-default},
    ${NAME-default}, ${NAME:?message}, ${NAME?message}. As there, a `$` starting none of these is an invalid
    template, and a default or message is itself interpolated whether it is needed or not."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        following = text[i + 1:i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            depth, j = 0, i
            while j < len(text):
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                if text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            else:
                raise ValueError(f"Invalid template: {text!r}")
            out.append(_braced(text[i + 2:j], env, text))
            i = j + 1
        else:
            named = re.match(r"[_a-zA-Z][_a-zA-Z0-9]*", text[i + 1:])
            if not named:
                raise ValueError(f"Invalid template: {text!r}")
            out.append(env.get(named.group(), ""))
            i += 1 + named.end()
    return "".join(out)


def _braced(body: str, env: dict, text: str) -> str:
    parts = re.fullmatch(r"([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-?])(.*))?", body, re.S)
    if not parts:
        raise ValueError(f"Invalid template: {text!r}")
    name, op, arg = parts.groups()
    value = env.get(name)
    if op is None:
        return value or ""
    arg = interpolate(arg, env)
    if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
        raise MissingVariable(f"required variable {name} is missing a value: {arg}")
    if op == ":-":
        return value or arg
    if op == "-":
        return arg if value is None else value
    return value


def _interpolated(node, env: dict):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(n, env) for n in node]
    if isinstance(node, dict):
        return {k: _interpolated(v, env) for k, v in node.items()}
    return node


def compose(env: dict | None = None) -> dict:
    """deploy/compose.yaml as `docker compose config` would see it with `env` exported (YAML merge keys resolved,
    variables interpolated)."""
    import yaml

    return _interpolated(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), USER_ENV if env is None else env)


def dockerfile_commands() -> list[tuple[dict, list[str]]]:
    """Each `searchlm ...` command the Dockerfile runs, with the variables assigned in front of it."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if not line.startswith("RUN "):
            continue
        for part in line[4:].split("&&"):
            words = shlex.split(part)
            assigned = {}
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                key, _, value = words.pop(0).partition("=")
                assigned[key] = value
            if words and words[0] == "searchlm":
                found.append((assigned, words))
    return found


def caddyfile_for(upstreams: list[str], port: int) -> str:
    """deploy/Caddyfile with its one Docker-DNS upstream replaced by these addresses and its site on `port`:
    everything else (balancing, retries, headers, streaming) as written."""
    text = CADDYFILE.read_text(encoding="utf-8")
    assert len(UPSTREAM.findall(text)) == 1 and text.count(":8080 {") == 1 and "admin off" in text, "deploy/Caddyfile changed shape"
    text = UPSTREAM.sub("to " + " ".join(upstreams), text)
    # Loopback only, and still any Host (an address with a host in it would match only that Host).
    return text.replace("admin off", "admin off\n\tdefault_bind 127.0.0.1", 1).replace(":8080 {", f":{port} {{")
