"""The FAISS vector index: contract (add/remove/search/save/load) for both types, type by size recorded in the
manifest, memory-mapped loading, filtered search, and HNSW recall against exact search on vectors shaped like real
embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from searchlm.stores import faiss as vectors
from searchlm.stores.faiss import FaissIndex, choose_type

DIM = 32


def embedding_like(n: int, dim: int, seed: int, n_queries: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors shaped like MiniLM chunk embeddings, not uniform noise: a shared mean direction, topics,
    documents within topics and chunks within documents, with a power-law variance spectrum.

    Calibrated on 4,381 real MiniLM SciFact chunk vectors and 200 SciFact queries (real / this, at 4k points):
    PCs for 50/80/90 % variance 33,109,163 / 29,115,202; norm of the mean 0.35 / 0.32; mean pairwise cosine
    0.12 / 0.10; nearest-neighbour cosine 0.84 / 0.85; query top-1 cosine 0.57 / 0.59, 10th 0.44 / 0.43."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0] * np.arange(1, dim + 1) ** -0.35

    def draw(k: int, scale: float) -> np.ndarray:
        return (rng.normal(size=(k, dim)) * scale) @ basis.T

    mean = rng.normal(size=dim)
    mean *= 2.0 / np.linalg.norm(mean)
    topics = draw(max(50, n // 400), 1.0)
    docs = topics[rng.integers(len(topics), size=n // 2 + 1)] + draw(n // 2 + 1, 0.9)
    x = mean + docs[rng.integers(len(docs), size=n)] + draw(n, 0.6)
    q = mean + docs[rng.integers(len(docs), size=n_queries)] + draw(n_queries, 1.7)
    unit = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(x), unit(q)


def exact_top(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    scores = q @ x.T
    order = np.argsort(-scores, axis=1)[:, :k]
    return ids[order]


@pytest.fixture(scope="module")
def data():
    x, q = embedding_like(2000, DIM, seed=1, n_queries=20)
    ids = np.arange(1000, 3000, dtype=np.int64)  # chunk ids, not positions
    return x, ids, q


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_contract_add_search_save_load(tmp_path, data, kind):
    x, ids, q = data
    index = FaissIndex.build(DIM, [(ids[:1000], x[:1000]), (ids[1000:], x[1000:])], len(ids), kind)
    assert index.kind == kind and len(index) == len(ids)

    scores, found = index.search(q, 10)
    assert found.shape == (len(q), 10) and scores.shape == (len(q), 10)
    assert set(found.ravel()) <= set(ids)  # FAISS ids are our ids, not positions
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    # Each query's best hit is the exact nearest neighbour (HNSW too, on this small set).
    assert (found[:, 0] == exact_top(x, ids, q, 1)[:, 0]).mean() >= 0.95
    # Scores are inner products of the stored vectors.
    pos = {int(i): p for p, i in enumerate(ids)}
    assert scores[0, 0] == pytest.approx(float(q[0] @ x[pos[int(found[0, 0])]]), abs=1e-5)

    path = tmp_path / "v.faiss"
    index.save(path)
    assert path.is_file() and not list(tmp_path.glob(".v.faiss.*"))  # atomic: no temp file left
    loaded = FaissIndex.load(path, kind)
    assert len(loaded) == len(ids)
    s2, f2 = loaded.search(q, 10)
    assert np.array_equal(f2, found) and np.allclose(s2, scores)

    # k larger than the index is clipped; a single query vector (1-D) works.
    small = FaissIndex.build(DIM, [(ids[:3], x[:3])], 3, kind)
    s, f = small.search(q[0], 10)
    assert f.shape == (1, 3) and set(f[0]) == set(ids[:3])


def test_flat_remove_and_add(data):
    x, ids, q = data
    index = FaissIndex.build(DIM, [(ids, x)], len(ids), "flat")
    best = index.search(q[:1], 1)[1][0, 0]
    assert index.remove(np.array([best, 999_999])) == 1  # unknown ids are ignored
    assert len(index) == len(ids) - 1
    assert best not in index.search(q[:1], 50)[1][0]
    index.add(np.array([best]), x[ids == best])
    assert index.search(q[:1], 1)[1][0, 0] == best


def test_hnsw_cannot_remove(data):
    x, ids, _ = data
    index = FaissIndex.build(DIM, [(ids, x)], len(ids), "hnsw")
    with pytest.raises(NotImplementedError):
        index.remove(ids[:2])


def test_flat_load_is_memory_mapped_and_editable(tmp_path, data):
    x, ids, q = data
    path = tmp_path / "mapped.faiss"
    FaissIndex.build(DIM, [(ids, x)], len(ids), "flat").save(path)
    loaded = FaissIndex.load(path, "flat")
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else None
    if maps is not None:
        assert str(path) in maps  # the vectors are a view of the file, not a copy
    before = loaded.search(q, 5)
    # Editing a mapped index copies it first (faiss aborts the process on a write to a view).
    loaded.add(np.array([5]), x[:1])
    loaded.remove(np.array([ids[0]]))
    assert len(loaded) == len(ids)
    assert loaded.search(x[:1], 1)[1][0, 0] == 5
    # The file on disk is untouched by the in-memory edit.
    again = FaissIndex.load(path, "flat")
    assert np.array_equal(again.search(q, 5)[1], before[1])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_allowed_ids_filter_before_the_cut(data, kind):
    x, ids, q = data
    index = FaissIndex.build(DIM, [(ids, x)], len(ids), kind)
    rng = np.random.default_rng(3)
    allowed = np.sort(rng.choice(ids, size=300, replace=False))
    scores, found = index.search(q, 10, allowed_ids=allowed)
    assert set(found.ravel()) - {-1} <= set(allowed)
    mask = np.isin(ids, allowed)
    want = exact_top(x[mask], ids[mask], q, 10)
    recall = np.mean([len(set(f) & set(w)) / 10 for f, w in zip(found, want)])
    assert recall >= (1.0 if kind == "flat" else 0.9)
    # Ten hits although most of the nearest neighbours overall are filtered out.
    assert (found >= 0).sum(axis=1).min() == 10


def test_type_chosen_by_size_and_recorded_in_manifest(make_index, monkeypatch):
    from searchlm.indexing.indexer import rebuild_vectors
    from searchlm.indexing.manifest import DB_FILE, Manifest
    from searchlm.search.searcher import Searcher
    from searchlm.indexing.database import Database

    assert choose_type(vectors.HNSW_THRESHOLD - 1) == "flat" and choose_type(vectors.HNSW_THRESHOLD) == "hnsw"
    files = {f"note{i}.md": f"# Note {i}\n\nThe number {i} is written here, with some words about topic {i % 3}.\n"
             for i in range(12)}
    settings, report, _ = make_index(files)
    manifest = Manifest.load(settings.index_dir)
    assert manifest.ann["type"] == "flat" and manifest.ann["count"] == report.chunks_total

    # Past the threshold the rebuild switches to HNSW, says so in the manifest, and searches still work.
    monkeypatch.setattr(vectors, "HNSW_THRESHOLD", 5)
    store = Database(settings.index_dir / DB_FILE)
    try:
        rebuild_vectors(store, manifest, settings.index_dir)
        manifest.save(settings.index_dir)
    finally:
        store.close()
    assert Manifest.load(settings.index_dir).ann["type"] == "hnsw"
    searcher = Searcher(settings)
    try:
        assert searcher.vectors.index.kind == "hnsw"
        hits = searcher.search("number 7", mode="dense", k=3)
        assert len(hits) == 3 and all(h.path.endswith(".md") for h in hits)
    finally:
        searcher.close()


@pytest.mark.slow
def test_hnsw_tuned_on_its_own_vectors_reaches_the_target_on_100k_embedding_like_queries():
    """HNSW tuned as `index` tunes it (on its own vectors, never these queries) keeps >= 95 % of the exact top 10
    of unseen queries on 100k vectors shaped like MiniLM's."""
    dim, n = 384, 100_000
    x, q = embedding_like(n, dim, seed=7, n_queries=300)
    ids = np.arange(n, dtype=np.int64) + 1
    exact = FaissIndex.build(dim, [(ids, x)], n, "flat")
    scores, want = exact.search(q, 10)
    # As hard as real queries: the 1st and 10th neighbours are close in score (real: 0.57 and 0.44 medians).
    assert 0.5 < np.median(scores[:, 0]) < 0.7 and 0.35 < np.median(scores[:, 9]) < 0.55
    assert choose_type(n) == "hnsw"
    index = FaissIndex.build(dim, [(ids[i : i + 20_000], x[i : i + 20_000]) for i in range(0, n, 20_000)], n)
    assert index.kind == "hnsw"
    tuned = vectors.tune_ef_search(index)
    assert tuned["recall"] >= vectors.RECALL_TARGET and index.ef == tuned["ef_search"]
    _, got = index.search(q, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)])
    assert recall >= 0.95, (recall, tuned)


def test_a_one_thread_search_leaves_the_process_thread_count_alone(tmp_path, data):
    """OpenMP's thread count is process-wide: the one-shot 1-thread cap must not outlive the search, or the torch
    models that run next in the same process (LM reranker, generator) would run on one core."""
    import faiss

    x, ids, q = data
    path = tmp_path / "v.faiss"
    FaissIndex.build(DIM, [(ids, x)], len(ids), "flat").save(path)
    before = faiss.omp_get_max_threads()
    one = FaissIndex.load(path, "flat", use_gpu=False, threads=1)
    scores, found = one.search(q, 5)
    assert found.shape == (len(q), 5)
    assert faiss.omp_get_max_threads() == before
    default = FaissIndex.load(path, "flat", use_gpu=False)
    assert np.array_equal(default.search(q, 5)[1], found)


@pytest.fixture(scope="module")
def hard():
    """Unit vectors with no structure (the hardest case for a graph index): efSearch matters at 8k vectors."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8000, 96)).astype(np.float32)
    q = rng.normal(size=(100, 96)).astype(np.float32)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    ids = np.arange(8000, dtype=np.int64) * 7 + 3
    return unit(x), ids, unit(q), FaissIndex.build(96, [(ids, unit(x))], len(ids), "hnsw")


def test_tuned_ef_search_is_the_smallest_step_that_reaches_the_target(hard):
    """Given queries, the chosen efSearch reaches the target recall@10 against exact search with 95 % confidence,
    over all the queries and over the quarter of the graph-served ones with the lowest exact 10th cosine (checked
    here independently: mean minus 1.645 standard errors), and the step below it does not; a higher target asks
    for more. Queries whose 10th graph hit scores below the 5th percentile of the exact 10th cosines are searched
    exactly, and measured so."""
    x, ids, q, index = hard
    want = exact_top(x, ids, q, 10)
    tenth = np.sort(q @ x.T, axis=1)[:, -10]

    def bound(per: np.ndarray) -> float:
        return per.mean() - 1.645 * per.std(ddof=1) / np.sqrt(len(per))

    def measure(ef: int, floor: float) -> tuple[float, np.ndarray]:
        index.ef = ef
        per = np.array([len(set(f) & set(w)) / 10 for f, w in zip(index.search(q, 10)[1], want)])
        served = tenth >= floor
        far = served & (tenth <= np.quantile(tenth[served], 0.25))
        return min(bound(per), bound(per[far])), per

    low = vectors.tune_ef_search(index, 0.9, queries=q)
    high = vectors.tune_ef_search(index, 0.99, queries=q)
    floor = high["exact_below"]
    assert floor == pytest.approx(np.quantile(tenth, 0.05), abs=1e-4)
    assert index.ef == high["ef_search"] and high["recall_target"] == 0.99 and high["tuned_count"] == len(ids)
    assert vectors.EF_STEPS[0] < low["ef_search"] < high["ef_search"]
    for tuned in (low, high):
        ef = tuned["ef_search"]
        reached, per = measure(ef, floor)
        assert reached >= tuned["recall_target"] and per.mean() == pytest.approx(tuned["recall"], abs=1e-3)
        assert measure(vectors.EF_STEPS[vectors.EF_STEPS.index(ef) - 1], floor)[0] < tuned["recall_target"]
    index.ef = vectors.EF_STEPS[0]
    scores, found = index.search(q, 10)
    index.exact_below = None
    graph_s, graph = index.search(q, 10)
    redone = graph_s[:, 9] < floor
    assert redone.any() and np.array_equal(found[redone], want[redone])  # far ones: exact
    assert not all(np.array_equal(g, w) for g, w in zip(graph[redone], want[redone]))  # which the graph missed


def test_probe_queries_lie_between_chunks_as_real_queries_do():
    """Tuning queries are not stored vectors (a stored vector finds itself at cosine 1 and its clump at any
    efSearch): each is the midpoint of two live vectors, its top-1 cosine in the range of real MiniLM queries
    (0.57-0.68 median), its exact top 10 drawn from both members' neighbourhoods; removed vectors are never used."""
    x, _ = embedding_like(4000, 384, seed=3)
    alive = np.arange(1000, 4000)
    probes = vectors.probe_queries(x, alive, 300, np.random.default_rng(0))
    assert probes.shape == (300, 384) and np.allclose(np.linalg.norm(probes, axis=1), 1, atol=1e-5)
    scores = np.sort(probes @ x[alive].T, axis=1)[:, ::-1]
    assert scores[:, 0].max() < 0.99  # no probe is a stored vector
    assert 0.55 < np.median(scores[:, 0]) < 0.85 and np.median(scores[:, 0] - scores[:, 9]) > 0.05
    # Each probe is the sum of two live vectors: rebuilt from the same generator, both are in its top 10, and
    # no removed vector (positions below 1000) is one of them.
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.choice(alive, size=2, replace=False) for _ in range(300)])
    assert np.allclose(probes, (x[pairs[:, 0]] + x[pairs[:, 1]]) / np.linalg.norm(x[pairs[:, 0]] + x[pairs[:, 1]],
                                                                                   axis=1, keepdims=True), atol=1e-5)
    top10 = alive[np.argsort(-(probes @ x[alive].T), axis=1)[:, :10]]
    assert np.mean([set(p) <= set(t) for p, t in zip(pairs, top10)]) > 0.9


def test_chosen_efsearch_rises_with_the_recall_target_on_probe_queries(hard):
    """On its own probe queries (no queries given), a higher target never chooses a smaller efSearch, and a
    target the probes reach at the first step does not ask for more."""
    *_, index = hard
    low = vectors.tune_ef_search(index, 0.5)
    mid = vectors.tune_ef_search(index, 0.9)
    high = vectors.tune_ef_search(index, 0.99)
    assert low["ef_search"] <= mid["ef_search"] < high["ef_search"]
    assert low["recall"] >= 0.5 and mid["recall"] >= 0.9 and high["tuned_queries"] == vectors.TUNE_QUERIES
    assert index.ef == high["ef_search"]


def test_tuning_on_its_own_vectors_leaves_removed_ones_out_and_holds_for_unseen_queries(hard):
    """With no queries given, probes made of the index's own vectors (none of them a reported query) choose
    efSearch; unseen queries reach about the target there. Tombstoned ids are never counted as neighbours."""
    x, ids, q, index = hard
    tuned = vectors.tune_ef_search(index, 0.95, tombstones=ids[:4000])
    assert tuned["recall"] >= 0.95 and tuned["tuned_count"] == 4000 and tuned["tuned_queries"] == vectors.TUNE_QUERIES
    index.ef = tuned["ef_search"]
    alive = np.arange(len(ids)) >= 4000
    _, found = index.search(q, 10, excluded_ids=ids[:4000])
    want = exact_top(x[alive], ids[alive], q, 10)
    assert not np.isin(found, ids[:4000]).any()
    assert np.mean([len(set(f) & set(w)) / 10 for f, w in zip(found, want)]) >= 0.9


def test_hnsw_efsearch_is_measured_recorded_shown_and_retuned_for_a_new_target(make_index, embedder, monkeypatch):
    """An HNSW index's efSearch is measured at `index` time and recorded with its recall in the manifest;
    `status` and `check` show it, searches use it, and `--recall 0.99` (kept for later runs) measures again."""
    from typer.testing import CliRunner

    from searchlm.cli import app
    from searchlm.indexing.indexer import index_folder
    from searchlm.indexing.manifest import Manifest
    from searchlm.search.searcher import Searcher

    monkeypatch.setattr(vectors, "HNSW_THRESHOLD", 5)
    files = {f"note{i}.md": f"# Note {i}\n\nThe number {i} is written here, with words about topic {i % 3}.\n"
             for i in range(30)}
    settings, report, corpus = make_index(files)
    ann = Manifest.load(settings.index_dir).ann
    assert ann["type"] == "hnsw" and ann["recall_target"] == 0.95 and ann["recall"] >= 0.95
    assert ann["ef_search"] in vectors.EF_STEPS and ann["tuned_count"] == report.chunks_total
    # tuned on queries written from its chunks' text by its own encoder: one per chunk here (fewer than 200)
    assert ann["probes"] == "text" and ann["tuned_queries"] == report.chunks_total and 0 < ann["exact_below"] < 1
    assert any(n.startswith(f"HNSW efSearch {ann['ef_search']}: recall@10") and "written from the text of" in n
               for n in report.notices)
    with Searcher(settings) as searcher:
        assert searcher.vectors.index.ef == ann["ef_search"]
        assert searcher.vectors.index.exact_below == ann["exact_below"]

    again = index_folder(corpus, settings.with_(recall=0.99), embedder=embedder)  # nothing changed but the target
    ann = Manifest.load(settings.index_dir).ann
    assert ann["recall_target"] == 0.99 and ann["recall"] >= 0.99 and any("target 0.99" in n for n in again.notices)
    third = index_folder(corpus, settings, embedder=embedder)  # the target is kept; nothing to measure
    assert Manifest.load(settings.index_dir).ann["recall_target"] == 0.99 and not third.notices
    # Tuned on vector-made probes (its encoder was missing then, e.g. `check --repair` restores it after the
    # store): the next run, the encoder back, measures again on text.
    manifest = Manifest.load(settings.index_dir)
    manifest.ann["probes"] = "vectors"
    manifest.save(settings.index_dir)
    fourth = index_folder(corpus, settings, embedder=embedder)
    assert Manifest.load(settings.index_dir).ann["probes"] == "text" and fourth.notices

    runner = CliRunner()
    where = ["--name", settings.name, "--home", str(settings.home)]
    shown = runner.invoke(app, ["status", *where])
    assert shown.exit_code == 0 and f"ef_search={ann['ef_search']}" in shown.output and "recall_target=0.99" in shown.output
    checked = runner.invoke(app, ["check", *where])
    assert checked.exit_code == 0 and f"HNSW efSearch {ann['ef_search']}: recall@10" in checked.output


def unstructured_hnsw(seed: int):
    """4,000 unit vectors with no structure (efSearch 16 misses neighbours), 40 queries, ids not positions, and
    their HNSW."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.normal(size=(40, 64)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = np.arange(4000, dtype=np.int64) * 3 + 5
    return x, q, ids, FaissIndex.build(64, [(ids, x)], len(ids), "hnsw")


def test_a_query_far_from_the_data_is_searched_exactly_with_tombstones_and_filters():
    """A graph search whose 10th hit scores below `exact_below` is redone exactly, with the same tombstones or
    filter; queries above it keep the graph's answer."""
    x, q, ids, index = unstructured_hnsw(12)
    index.ef = 16
    dead, alive = ids[::7], np.ones(len(ids), dtype=bool)
    alive[::7] = False
    graph_s, graph = index.search(q, 10, excluded_ids=dead)
    want = exact_top(x[alive], ids[alive], q, 10)
    missed = np.array([not np.array_equal(g, w) for g, w in zip(graph, want)])
    assert missed.any()
    index.exact_below = float(np.median(graph_s[:, 9]))  # half the queries' 10th hits fall below it
    far = graph_s[:, 9] < index.exact_below
    _, found = index.search(q, 10, excluded_ids=dead)
    assert np.array_equal(found[far], want[far]) and np.array_equal(found[~far], graph[~far])
    _, top3 = index.search(q, 3, excluded_ids=dead)  # fewer than 10 asked: still decided by the 10th graph hit
    assert np.array_equal(top3[far], want[far, :3]) and np.array_equal(top3[~far], graph[~far, :3])
    allowed = ids[ids % 2 == 0]
    keep = np.isin(ids, allowed)
    index.exact_below = 2.0  # above any cosine: every query exact
    _, found = index.search(q, 10, allowed_ids=allowed)
    assert np.array_equal(found, exact_top(x[keep], ids[keep], q, 10))


def test_text_probes_are_runs_of_words_from_the_chunks_encoded_as_queries(embedder):
    """Tuning queries written from the index's text: each a run of 6-16 consecutive words of one chunk, encoded
    by the given encoder (as a query is)."""
    texts = [" ".join(f"w{i}x{j}" for j in range(40)) for i in range(30)] + ["a short one"]
    seen = []

    class Recording:
        def embed(self, windows):
            seen.extend(windows)
            return embedder.embed(windows)

    probes = vectors.text_probes(texts, Recording(), np.random.default_rng(0))
    assert probes.shape == (len(texts), embedder.dimension) and len(seen) == len(texts)
    assert np.allclose(np.linalg.norm(probes, axis=1), 1, atol=1e-3)
    for text, window in zip(texts, seen):
        assert window in text and (6 <= len(window.split()) <= 16 or window == text)
    assert len({len(w.split()) for w in seen}) > 3  # lengths vary


def test_hnsw_that_reaches_no_target_searches_exactly_with_tombstones_and_filters():
    """When no efSearch step reaches the target, the tuner says "exact" with the recall HNSW reached and the step
    tried, and searches then return exactly the exact top k over the HNSW file's own vectors: removed ids
    (tombstones) skipped, a filter (allowed ids) applied before the cut."""
    x, q, ids, index = unstructured_hnsw(11)
    dead = ids[::7]
    tuned = vectors.tune_ef_search(index, 0.99, tombstones=dead, steps=(16,))
    assert tuned["mode"] == "exact" and tuned["ef_search"] == 16 and tuned["recall"] < 0.99 and index.exact
    assert "hnsw_ms" not in tuned  # costs are compared from COST_CHECK_MIN vectors only
    alive = ~np.isin(ids, dead)
    _, found = index.search(q, 10, excluded_ids=dead)
    assert np.array_equal(found, exact_top(x[alive], ids[alive], q, 10))
    more = np.union1d(dead, ids[1::5])  # new tombstones come as a new array: their positions are found again
    later = ~np.isin(ids, more)
    _, found = index.search(q, 10, excluded_ids=more)
    assert np.array_equal(found, exact_top(x[later], ids[later], q, 10))
    _, found = index.search(q, 10, excluded_ids=dead)
    assert np.array_equal(found, exact_top(x[alive], ids[alive], q, 10))
    allowed = ids[(ids % 2 == 0)]
    keep = np.isin(ids, allowed)
    _, found = index.search(q, 10, allowed_ids=allowed)
    assert np.array_equal(found, exact_top(x[keep], ids[keep], q, 10))
    _, found = index.search(q, 3, allowed_ids=allowed[:2])  # fewer allowed than k: the rest is -1
    assert set(found[:, :2].ravel()) <= set(allowed[:2]) and (found[:, 2] == -1).all()
    index.exact = False  # the graph at efSearch 16 is what it replaced: it misses some of them
    _, graph = index.search(q, 10, excluded_ids=dead)
    assert not np.array_equal(graph, exact_top(x[alive], ids[alive], q, 10))
    reached = vectors.tune_ef_search(index, 0.5, tombstones=dead)
    assert reached["mode"] == "hnsw" and not index.exact


def test_search_lines_say_how_vectors_are_searched_and_why():
    line = vectors.search_line
    hnsw = {"type": "hnsw", "ef_search": 768, "recall": 0.955, "recall_target": 0.95, "tuned_count": 200_000,
            "tuned_queries": 200, "mode": "hnsw"}
    assert line(hnsw) == ("HNSW efSearch 768: recall@10 0.955 against exact search on 200 probe queries made from "
                          "200,000 chunks (target 0.95)")
    text = hnsw | {"probes": "text", "exact_below": 0.3831, "recall_far": 0.9521}
    assert line(text) == ("HNSW efSearch 768: recall@10 0.955 (0.952 on the quarter farthest from the data) against "
                          "exact search on 200 probe queries written from the text of 200,000 chunks (target 0.95; "
                          "queries whose 10th hit scores below 0.38 searched exactly)")
    short = hnsw | {"ef_search": 4096, "recall": 0.858, "mode": "exact", "hnsw_ms": 33.7, "exact_ms": 59.5}
    assert line(short).startswith("exact search (HNSW reached recall@10 0.858 at efSearch 4096 < target 0.95")
    slow = hnsw | {"ef_search": 4096, "recall": 0.96, "mode": "exact", "hnsw_ms": 61.0, "exact_ms": 59.5,
                   "reached": True}
    assert line(slow).startswith("exact search (HNSW reached recall@10 0.960 at efSearch 4096 but took 61.0 ms a "
                                 "query, an exact scan 59.5 ms")
    unsure = hnsw | {"ef_search": 4096, "recall": 0.9745, "recall_far": 0.9625, "mode": "exact", "hnsw_ms": 11.8,
                     "exact_ms": 60.4, "probes": "text", "reached": False}  # the mean above target, its bound not
    both = unsure | {"hnsw_ms": 70.0, "reached": False}  # slower too, but the tuner's bounds fell short
    assert ": not surely >= target 0.95" in line(both) and "but took" not in line(both)
    small = hnsw | {"recall": 0.97, "mode": "exact"}  # no costs (under 20,000 vectors): the mean is above target
    assert ": not surely >= target 0.95" in line(small) and "< target" not in line(small)
    assert line(unsure) == ("exact search (HNSW reached recall@10 0.975 (0.963 on the quarter farthest from the data) "
                            "at efSearch 4096: not surely >= target 0.95 (95 % confidence), on 200 probe queries "
                            "written from the text of 200,000 chunks)")
    assert line({"type": "flat", "count": 3}) == "exact search (flat index)"
    assert line({"type": "hnsw"}).startswith("HNSW efSearch not measured yet")
    assert line({"backend": "milvus", "type": "hnsw"}) is None


def test_an_index_whose_target_no_efsearch_reaches_searches_exactly_and_says_so(make_index, embedder, monkeypatch):
    """Through `index`: an unreachable target (above any recall) records "mode": "exact" in the manifest; `index`,
    `status` and `check` say so in one line; searches skip a removed document and rank as exact search does."""
    from typer.testing import CliRunner

    from searchlm.cli import app
    from searchlm.indexing.database import Database
    from searchlm.indexing.indexer import index_folder
    from searchlm.indexing.manifest import DB_FILE, Manifest
    from searchlm.search.searcher import Searcher

    monkeypatch.setattr(vectors, "HNSW_THRESHOLD", 5)
    monkeypatch.setattr(vectors, "RECALL_TARGET", 1.01)  # a tiny graph reaches 1.0: only above it is out of reach
    files = {f"note{i}.md": f"# Note {i}\n\nThe number {i} is written here, with words about topic {i % 3}.\n"
             for i in range(30)}
    settings, report, corpus = make_index(files)
    ann = Manifest.load(settings.index_dir).ann
    assert ann["type"] == "hnsw" and ann["mode"] == "exact" and ann["ef_search"] == vectors.EF_STEPS[-1]
    said = (f"exact search (HNSW reached recall@10 {ann['recall']:.3f} ({ann['recall_far']:.3f} on the quarter farthest"
            f" from the data) at efSearch {vectors.EF_STEPS[-1]} < target 1.01")
    assert any(n.startswith(said) for n in report.notices)
    (corpus / "note7.md").unlink()
    index_folder(corpus, settings, embedder=embedder)
    ann = Manifest.load(settings.index_dir).ann
    assert ann["mode"] == "exact" and ann["tombstones"] == 1
    store = Database(settings.index_dir / DB_FILE, readonly=True)
    try:
        stored = stored_vectors_of(store)
    finally:
        store.close()
    query = "The number 7 is written here"
    with Searcher(settings) as searcher:
        index = searcher.vectors.index
        assert index.kind == "hnsw" and index.exact and len(index) == len(stored) + 1  # the removed one in the graph
        qv = np.asarray(searcher.encoder.embed_query(query), dtype=np.float32)
        ids = np.fromiter(stored, dtype=np.int64)
        exact = np.vstack([stored[i] for i in ids]) @ qv
        got = searcher.vectors.search(qv, 10)  # the removed chunk would be first: its text is the query's
        assert set(got) <= set(ids.tolist()) and len(got) == 10
        assert np.allclose(list(got.values()), np.sort(exact)[::-1][:10], atol=1e-5)
        assert got == {int(i): pytest.approx(float(exact[ids == i][0]), abs=1e-5) for i in got}
        hits = searcher.search(query, mode="dense", k=29)
        assert len(hits) == 29 and not any(h.path.endswith("note7.md") for h in hits)
    runner = CliRunner()
    where = ["--name", settings.name, "--home", str(settings.home)]
    shown = runner.invoke(app, ["status", *where])
    assert shown.exit_code == 0 and any(l.startswith("vectors") and said in l for l in shown.output.splitlines())
    checked = runner.invoke(app, ["check", *where])
    assert checked.exit_code == 0 and said in checked.output


def stored_vectors_of(store) -> dict[int, np.ndarray]:
    return {int(i): v for ids, vs in store.iter_vectors() for i, v in zip(ids, vs)}


def test_recall_target_from_the_environment_and_a_bad_one_refused(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from searchlm.cli import app
    from searchlm.errors import InputError
    from searchlm.settings import Settings

    (tmp_path / "a.txt").write_text("Some words.\n")
    refused = CliRunner().invoke(app, ["index", str(tmp_path), "--home", str(tmp_path / "h"), "--recall", "2"])
    assert refused.exit_code == 1 and "recall target '2.0' is not a number above 0 and at most 1" in refused.output
    assert not (tmp_path / "h" / "default").exists()

    monkeypatch.setenv("SEARCHLM_RECALL", "0.99")
    assert Settings.load().recall == 0.99 and Settings.load(recall=0.9).recall == 0.9
    for bad in ("high", "0", "1.5", "nan"):
        monkeypatch.setenv("SEARCHLM_RECALL", bad)
        with pytest.raises(InputError, match=r"recall target '.*' is not a number above 0 and at most 1"):
            Settings.load()


def test_a_default_store_past_the_tantivy_size_says_how_to_move(make_index, monkeypatch):
    """Past TANTIVY_ADVICE_CHUNKS, `index` says in one line that `--store faiss+tantivy` moves the index
    without re-encoding; an index already on tantivy hears nothing."""
    from searchlm.indexing.manifest import Manifest
    from searchlm.stores import base

    monkeypatch.setattr(base, "TANTIVY_ADVICE_CHUNKS", 3)
    settings, report, _ = make_index({f"n{i}.md": f"# N {i}\n\nWords number {i}.\n" for i in range(4)})
    move = [n for n in report.notices if "--store faiss+tantivy" in n]
    assert len(move) == 1 and move[0].startswith("4 chunks: keyword search in SQLite FTS5 slows hybrid search")
    assert f"--name {settings.name} --store faiss+tantivy` moves the index to tantivy without re-encoding" in move[0]
    manifest = Manifest.load(settings.index_dir)
    manifest.store = {"backend": "faiss+tantivy"}
    assert not base.store_notices(manifest, manifest.ann, 4)
