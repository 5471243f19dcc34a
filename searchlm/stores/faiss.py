"""The FAISS backend of the vector-store seam: one FAISS file, derived from the vectors stored in SQLite.

Type by size: exact `IndexFlatIP` below `HNSW_THRESHOLD` vectors, HNSW above it, its efSearch measured on the
index's own vectors to reach a recall@10 target against exact search (`tune_ef_search`; where no efSearch reaches
it, or only one slower than a scan, the HNSW file's stored vectors are searched exactly instead); both wrapped in `IndexIDMap` so FAISS ids are chunk ids, and the type is recorded in the
manifest. (Files written before used `IndexIDMap2`, which also keeps a reverse hash map of the ids; nothing here
looks a vector up by id, and building that map cost every cold search at 1M chunks ~0.1 s and 50 MB. Both load.) The vectors of both types are memory-mapped on load (no copy: a cold search touches only the pages it reads). When
faiss reports a GPU, unfiltered searches of a flat index run on a GPU copy; filtered ones (an `IDSelector`, which
GPU indexes do not take) and all edits stay on the CPU index.

Updates are incremental (`FaissStore.sync` applies SQLite's change log): a flat index removes ids in place; HNSW
cannot, so removed ids become tombstones, kept in SQLite and excluded at search time, and the file is rebuilt from
SQLite once they pass `TOMBSTONE_SHARE` of it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from searchlm.indexing import integrity
from searchlm.fileio import temp_path_for
from searchlm.stores.base import ChunkFilter, VectorIndex

log = logging.getLogger(__name__)

FAISS_FILE = "vectors.faiss"

HNSW_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200  # hnswlib's default. FAISS's 40-80 left graphs with regions no search reaches: on a
# synthetic 1M set real queries stopped at recall@10 0.95 (SciFact) / 0.92 (Cranfield+CISI) at any efSearch; 200
# gives 0.978 / 0.965 at 3072 for about twice the graph's build time (benchmarks/RESULTS.md, #23).
# efSearch is not set by size: it is measured (`tune_ef_search`) when an HNSW file is built or has grown by
# RETUNE_GROWTH since, as the smallest of EF_STEPS whose recall@10 against exact search reaches the index's
# target, and recorded in the manifest. (A fixed 256 gave 0.998 on one synthetic 200k set and 0.447 on another.)
RECALL_TARGET = 0.95
EF_STEPS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
EF_UNTUNED = 1024  # an HNSW file from before tuning, until the next `index` run measures it
TUNE_QUERIES = 400  # 200 left the farthest quarter's 95 % interval too wide to certify any step at 1M
# Tuning queries are written from the index's own text where its folder holds the query encoder (`text_probes`:
# a window of PROBE_WORDS words of a random chunk, encoded as a query is): real queries are short texts about what
# the index holds. Vectors alone (no encoder) give two kinds, each of which must reach the target: midpoints of
# PROBE_MIX random live vectors, and live vectors moved off the data by isotropic noise to cosine QUERY_COSINE;
# on large dense sets they are far harsher than real queries (synthetic 1M: 0.83 at efSearch 4096 where real
# queries got 0.95-0.98), so HNSW was refused where it served real queries well.
PROBE_WORDS = (6, 16)
PROBE_MIX = 2
QUERY_COSINE = 0.4
# A step reaches the target when the lower end of a one-sided 95 % confidence interval of its recall over the
# tuning queries does (mean - CONFIDENCE_Z * standard error): 400 queries measure recall to about +-0.005, their
# farthest quarter (FAR_SHARE) to about +-0.01.
CONFIDENCE_Z = 1.645
# A query whose 10th graph hit (FAR_RANK) scores below the EXACT_BELOW_QUANTILE of the tuning queries' exact 10th
# cosines has a sparse neighbourhood: its top 10 is spread over regions the graph links poorly (a question about
# something the index barely holds; on a real 55k index XQuAD's questions, 10th cosine ~0.25 against the probes'
# ~0.53, got recall@10 0.60 at the efSearch that served the datasets' own queries at 0.97-0.99). It is searched
# exactly. And a step must reach the target on the FAR_SHARE of graph-served probes with the lowest 10th cosine
# too, not only on average: on that index the average chose efSearch 32, where short questions about manuals
# (10th cosine ~0.42) got 0.92; the farthest quarter chose 64 (0.97). On a synthetic 1M set the average chose 768
# (Cranfield+CISI queries 0.944), the farthest quarter 2048 (0.959).
FAR_RANK = 10
FAR_SHARE = 0.25
EXACT_BELOW_QUANTILE = 0.05
# When no step reaches the target, or the step that does costs a query more than an exact scan of the same vectors
# (measured on COST_QUERIES of the tuning queries, one at a time, one thread, as searches run), the index searches
# exactly over the HNSW file's own stored vectors ("mode": "exact"): always right, and no slower. (A synthetic
# 200k Cranfield+CISI set reached 0.858 at efSearch 4096 and searched there, wrongly, until this.) Costs are
# compared from COST_CHECK_MIN live vectors: below it a scan costs well under a millisecond, and HNSW files that
# small are only built on purpose (tests, benchmarks; `choose_type` builds flat below HNSW_THRESHOLD).
COST_QUERIES = 20
COST_CHECK_MIN = 20_000
TUNING_KEYS = ("ef_search", "recall", "recall_far", "reached", "recall_target", "tuned_count", "tuned_queries",
               "probes", "exact_below", "mode", "hnsw_ms", "exact_ms")
RETUNE_GROWTH = 1.2
TOMBSTONE_SHARE = 0.1  # an HNSW file holding more removed vectors than this share is rebuilt from SQLite


def choose_type(count: int) -> str:
    """Exact search below HNSW_THRESHOLD vectors: it is always right, and at 100k vectors one query costs a few
    ms of one core (a brute-force scan), about what a well-tuned HNSW search costs at 1M; past it the scan grows
    linearly while HNSW stays near-logarithmic, so HNSW wins by more the bigger the index."""
    return "hnsw" if count >= HNSW_THRESHOLD else "flat"


class FaissIndex:
    """add / remove / search / save / load over one FAISS index of normalized vectors."""

    def __init__(self, index, kind: str):
        self.index = index  # always on the CPU
        self.kind = kind
        self._gpu = None  # a GPU copy for unfiltered searches, see to_gpu()
        self._mapped = False  # loaded with IO_FLAG_MMAP_IFC: read-only until _own() copies it
        self.threads: int | None = None  # OpenMP threads for a search; None: faiss's default
        self.ef = EF_UNTUNED  # HNSW efSearch: what `tune_ef_search` measured, recorded in the manifest
        self.exact = False  # HNSW that reached no recall target cheaper than a scan: search its stored vectors
        self.exact_below: float | None = None  # a graph search whose FAR_RANK-th hit scores below it: redone exactly
        self.tuning: dict = {}  # that measurement (TUNING_KEYS)
        self._id_array: np.ndarray | None = None  # ids() by position, for exact searches of an HNSW file
        self._dead: tuple | None = None  # (the tombstone array last searched with, its positions), see _dead_positions

    @classmethod
    def empty(cls, dimension: int, kind: str = "flat") -> FaissIndex:
        import faiss

        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = EF_UNTUNED
        else:
            inner = faiss.IndexFlatIP(dimension)
        return cls(faiss.IndexIDMap(inner), kind)

    @classmethod
    def build(cls, dimension: int, batches, count: int, kind: str | None = None) -> FaissIndex:
        """Build from (ids, vectors) batches, e.g. `Database.iter_vectors()`."""
        index = cls.empty(dimension, kind or choose_type(count))
        for ids, vectors in batches:
            index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._own()
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        self._gpu = None
        self._id_array = None
        self._dead = None

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (flat only; HNSW cannot delete, so callers rebuild it from SQLite)."""
        import faiss

        if self.kind != "flat":
            raise NotImplementedError("HNSW indexes are rebuilt from SQLite instead of edited")
        self._own()
        self._gpu = None
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def _own(self) -> None:
        """A memory-mapped index is read-only: copy it into memory before the first edit."""
        if self._mapped:
            import faiss

            self.index = faiss.deserialize_index(faiss.serialize_index(self.index))
            self._mapped = False

    def ids(self) -> np.ndarray:
        """The chunk ids this index holds (IndexIDMap keeps them beside the vectors)."""
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None,
               excluded_ids: np.ndarray | None = None):
        """Top-k (scores, ids) per query; `allowed_ids` restricts the search before the cut (filters);
        `excluded_ids` are skipped (HNSW tombstones; ignored when `allowed_ids` is given, which never holds them).
        An HNSW index tuned to `exact` searches its stored vectors exactly instead of its graph, and a query whose
        FAR_RANK-th graph hit scores below `exact_below` (a sparse neighbourhood, see FAR_RANK; also a filter that
        leaves the graph too few near hits) is searched exactly too."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self)))
        if self.exact and self.kind == "hnsw":
            return self._search_exact(queries, k, allowed_ids, excluded_ids)
        floor = self.exact_below if self.kind == "hnsw" else None
        wanted, k = k, k if floor is None else max(k, min(FAR_RANK, len(self)))  # the FAR_RANK-th hit decides
        params = None
        selector = _selector(allowed_ids, excluded_ids)
        if selector is not None:
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self._gpu is not None:
            return self._gpu.search(queries, k)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef, k))
        scores, ids = self._threaded(self.index.search, queries, k, params)
        if floor is not None:
            far = np.flatnonzero(scores[:, min(k, FAR_RANK) - 1] < floor)  # also none found (-inf)
            if len(far):
                scores[far], ids[far] = self._search_exact(queries[far], k, allowed_ids, excluded_ids)
        return scores[:, :wanted], ids[:, :wanted]

    def _search_exact(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None,
                      excluded_ids: np.ndarray | None):
        """Exact top-k over an HNSW file's flat storage (its vectors by position; no copy, memory-mapped when
        loaded so), the filter and tombstones turned from ids into positions, the positions back into ids."""
        import faiss

        ids = self._positions_ids()
        if allowed_ids is not None:
            allowed_ids = np.flatnonzero(np.isin(ids, np.asarray(allowed_ids, dtype=np.int64)))
            excluded_ids = None
        elif excluded_ids is not None and len(excluded_ids):
            excluded_ids = self._dead_positions(excluded_ids)
        selector = _selector(allowed_ids, excluded_ids)
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, positions = self._threaded(_storage(self).search, queries, k, params)
        return scores, np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)

    def _dead_positions(self, excluded_ids: np.ndarray) -> np.ndarray:
        """The positions of the tombstones `excluded_ids`, kept while the same array comes back (`FaissStore`
        passes one array per state of its tombstones, replaced, never edited, when they change): finding them among
        1M ids costs ~14 ms, a tenth of the exact scan it would be added to on every query."""
        if self._dead is None or self._dead[0] is not excluded_ids:
            positions = np.flatnonzero(np.isin(self._positions_ids(), np.asarray(excluded_ids, dtype=np.int64)))
            self._dead = (excluded_ids, positions)
        return self._dead[1]

    def _positions_ids(self) -> np.ndarray:
        if self._id_array is None:
            self._id_array = self.ids()
        return self._id_array

    def _threaded(self, search, queries: np.ndarray, k: int, params):
        """`search` under this index's OpenMP thread cap (see `load`), the cap undone after."""
        import faiss

        if not self.threads:
            return search(queries, k, params=params)
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.threads)
        try:
            return search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(before)

    def save(self, path: Path) -> None:
        import faiss

        tmp = temp_path_for(path)
        try:
            faiss.write_index(self.index, str(tmp))
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(cls, path: Path, kind: str = "flat", use_gpu: bool = True, threads: int | None = None,
             mmap: bool = True) -> FaissIndex:
        """Read a FAISS file; its vectors are memory-mapped rather than copied (an HNSW file keeps only its graph
        in memory: 200k vectors read in 0.08 s instead of 3.3 s).

        `threads` caps faiss's OpenMP threads during this index's searches. A one-shot search wants 1: measured
        here, one query over 50k vectors takes 3 ms of CPU on one thread and 30 ms on two, lost to OpenMP hand-offs.
        The cap is undone after each search: OpenMP's thread count is per thread, and left at 1 it made the torch
        models that run next in the same process (LM reranker, generator) single-threaded (3.7 s instead of 2.1 s
        to rerank 20 passages)."""
        import faiss

        mmap = mmap and hasattr(faiss, "IO_FLAG_MMAP_IFC")  # flat and HNSW (storage: a flat index) both map
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        loaded = cls(index, kind)
        loaded._mapped = mmap
        loaded.threads = threads
        if use_gpu:
            loaded.to_gpu()
        return loaded

    def to_gpu(self) -> bool:
        """Keep a GPU copy of a flat index for unfiltered searches, when faiss has GPU support and sees a GPU.

        Untested here (no GPU on the build machine), hence guarded: any failure leaves the CPU index in use."""
        import faiss

        if self._gpu is not None:
            return True
        if self.kind != "flat" or not hasattr(faiss, "StandardGpuResources"):
            return False
        try:
            if faiss.get_num_gpus() < 1:
                return False
            self._gpu_resources = faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.index)
        except Exception:  # e.g. out of GPU memory, or a wrapper the GPU cloner does not know
            self._gpu = None
            return False
        return True


def _selector(allowed: np.ndarray | None, excluded: np.ndarray | None):
    """A FAISS IDSelector keeping only `allowed`, or all but `excluded`; None for neither."""
    import faiss

    if allowed is not None:
        return faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    if excluded is not None and len(excluded):
        inner = faiss.IDSelectorBatch(np.asarray(excluded, dtype=np.int64))
        selector = faiss.IDSelectorNot(inner)
        selector._inner = inner  # the SWIG wrapper does not keep it alive
        return selector
    return None


def _storage(index: FaissIndex):
    """An HNSW file's flat storage (an IndexFlatIP of its vectors by position)."""
    import faiss

    return faiss.downcast_index(faiss.downcast_index(index.index.index).storage)


def _stored_vectors(index: FaissIndex) -> np.ndarray:
    """An HNSW file's vectors, by position, without a copy (its flat storage; memory-mapped when loaded so)."""
    import faiss

    storage = _storage(index)
    return faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * storage.d).reshape(storage.ntotal, storage.d)


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, dead: np.ndarray,
               own: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, positions) of each query over `vectors`, skipping the positions `dead` and each
    query's own position `own[i]` (a stored vector moved off the data), in blocks to bound memory."""
    n = len(queries)
    best_s = np.full((n, k), -np.inf, dtype=np.float32)
    best_p = np.full((n, k), -1, dtype=np.int64)
    rows = np.arange(n)
    block = 65_536
    for lo in range(0, len(vectors), block):
        scores = queries @ np.asarray(vectors[lo:lo + block]).T
        hi = lo + scores.shape[1]
        if len(dead):
            local = dead[(dead >= lo) & (dead < hi)] - lo
            scores[:, local] = -np.inf
        if own is not None:
            inside = (own >= lo) & (own < hi)
            scores[rows[inside], own[inside] - lo] = -np.inf
        both_s = np.hstack([best_s, scores])
        both_p = np.hstack([best_p, np.broadcast_to(np.arange(lo, hi), scores.shape)])
        top = np.argpartition(-both_s, k - 1, axis=1)[:, :k]
        best_s, best_p = np.take_along_axis(both_s, top, 1), np.take_along_axis(both_p, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_p, order, 1)


def probe_queries(vectors: np.ndarray, alive: np.ndarray, count: int, rng, mix: int | None = None) -> np.ndarray:
    """`count` tuning queries between an index's chunks: each the normalized sum of `mix` (PROBE_MIX) distinct
    random live vectors.

    A stored vector is an easy query: its neighbours sit in one clump that the graph reaches at efSearch 16, and
    moving it off the data with isotropic noise mostly keeps them there. A real query lies between chunks, and a
    query about something the index barely holds (another dataset's) has its top 10 spread over regions the
    graph links poorly. The midpoint of two unrelated chunks is such a query: on MiniLM vectors its top-1 cosine
    is ~0.72 (median; real queries on their own corpus 0.66-0.68) and its exact top 10 is split between two
    regions; on the synthetic 200k Cranfield+CISI set its recall@10 at efSearch 768-4096 is at or below that of
    SciFact's queries (benchmarks/hnsw_tune.py). Queries about nothing the index holds stay harder than it on a
    dense set (XQuAD's Wikipedia questions on the synthetic SciFact-based 200k set, top-1 cosine ~0.2: 0.688 at
    the efSearch 768 these probes choose)."""
    mix = min(mix or PROBE_MIX, len(alive))
    picks = np.stack([rng.choice(alive, size=mix, replace=False) for _ in range(count)])  # never one vector twice
    queries = np.zeros((count, vectors.shape[1]), dtype=np.float32)
    for j in range(mix):
        order = np.argsort(picks[:, j])  # read the (possibly memory-mapped) vectors in file order
        queries[order] += np.asarray(vectors[picks[order, j]], dtype=np.float32)
    norms = np.linalg.norm(queries, axis=1, keepdims=True)
    return queries / np.where(norms > 0, norms, 1)


def moved_queries(vectors: np.ndarray, own: np.ndarray, rng, cosine: float | None = None) -> np.ndarray:
    """The stored vectors at positions `own`, each moved by random isotropic noise to `cosine` (QUERY_COSINE)
    from where it was: hard on vectors with little structure, where a midpoint is not."""
    cosine = cosine or QUERY_COSINE
    queries = np.asarray(vectors[own], dtype=np.float32)
    noise = rng.normal(size=queries.shape).astype(np.float32)
    noise *= np.sqrt(1 / cosine**2 - 1) / np.linalg.norm(noise, axis=1, keepdims=True)
    queries = queries + noise
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def text_probes(texts: list[str], embedder, rng) -> np.ndarray:
    """Tuning queries written from an index's own chunk `texts`: from each, a window of PROBE_WORDS consecutive
    words at a random place, encoded as a query is (`embedder.embed`).

    Real queries are short texts about what the index holds, and so are these: on synthetic 200k sets their
    recall@10 per efSearch runs within ~0.02 of the datasets' own queries' (benchmarks/probes/hnsw_text_probes.py),
    where the vector-made probes (`probe_queries`, `moved_queries`) asked 4-16 times the efSearch real queries
    needed. Their top-1 cosine (median ~0.55) is lower than real queries' (~0.67): they also stand for vaguer
    questions."""
    lo, hi = PROBE_WORDS
    windows = []
    for text in texts:
        words = text.split()
        n = int(rng.integers(lo, hi + 1))
        start = int(rng.integers(0, max(1, len(words) - n + 1)))
        windows.append(" ".join(words[start:start + n]))
    return np.asarray(embedder.embed(windows), dtype=np.float32)


def chunk_text_probes(store, live_ids: np.ndarray, embedder, count: int = TUNE_QUERIES,
                      seed: int = 0) -> np.ndarray | None:
    """`text_probes` from the texts of `count` random chunks of `live_ids` in the index database `store` (a
    `Database`); None when too few of them have words (fewer than half, or than 2)."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(live_ids, size=min(count, len(live_ids)), replace=False)
    texts = [text for _, _, _, text in sorted(store.chunk_texts(picked)) if text and text.split()]
    if len(texts) < max(2, len(picked) // 2):
        return None
    return text_probes(texts, embedder, rng)


def tune_ef_search(index: FaissIndex, target: float = RECALL_TARGET, tombstones: np.ndarray | None = None,
                   queries: np.ndarray | None = None, sample: int = TUNE_QUERIES, k: int = 10,
                   seed: int = 0, steps: tuple[int, ...] | None = None, probes: str | None = None) -> dict:
    """The smallest efSearch of EF_STEPS whose recall@k against exact search reaches `target` (the lower end of
    its 95 % confidence interval does, see CONFIDENCE_Z, over all the tuning queries and over the FAR_SHARE of
    them farthest from the data, "recall_far"), measured on the given `queries` (`FaissStore` passes
    `text_probes`; `probes` names them for the manifest) or, without them, on `sample` probe queries made from
    the index's live vectors: half midpoints between chunks (`probe_queries`), half stored vectors moved off the
    data (`moved_queries`, their own entry left out of both result lists), each half reaching the target. A hit
    counts when it is in the exact top k or scores as high as its k-th (ties). Recall is measured as searches are
    served: a query whose FAR_RANK-th graph hit scores below the EXACT_BELOW_QUANTILE of the tuning queries' exact
    k-th cosines ("exact_below") is searched exactly. Sets `index.ef` and `index.exact_below` and returns the
    measurement (the lowest kind's recall); when no step reaches the target, the largest step and the recall it
    reached (the manifest and `check` show it).

    "mode" is "exact" (and the index searches its stored vectors exactly) when no step reaches the target, or
    when the one that does costs a query at least as much as an exact scan ("hnsw_ms" and "exact_ms", measured
    from COST_CHECK_MIN live vectors); else "hnsw".

    Exact search reads every vector once (400 queries over 1M: ~4 s of BLAS); HNSW searches cost ~1-40 ms each
    per step, so tuning costs seconds to a minute at 1M, against minutes to build the graph."""
    tombstones = np.zeros(0, dtype=np.int64) if tombstones is None else np.asarray(tombstones, dtype=np.int64)
    steps = steps or EF_STEPS
    vectors = _stored_vectors(index)
    ids = index._positions_ids()
    dead = index._dead_positions(tombstones) if len(tombstones) else np.zeros(0, dtype=np.int64)
    live = len(ids) - len(dead)
    if live < 2:  # nothing to miss
        index.ef, index.exact, index.exact_below = steps[0], False, None
        index.tuning = {"ef_search": index.ef, "recall": 1.0, "recall_far": 1.0, "reached": True,
                        "recall_target": target, "tuned_count": live, "tuned_queries": 0, "mode": "hnsw"}
        return index.tuning
    k = min(k, live - 1)
    if queries is None:
        rng = np.random.default_rng(seed)
        alive = np.setdiff1d(np.arange(len(ids)), dead) if len(dead) else np.arange(len(ids))
        own = np.sort(rng.choice(alive, size=min(sample - sample // 2, len(alive)), replace=False))
        kinds = [(probe_queries(vectors, alive, sample // 2, rng), None), (moved_queries(vectors, own, rng), own)]
        probes = "vectors"
    else:
        kinds = [(np.asarray(queries, dtype=np.float32), None)]
    measured = []
    for q, own in kinds:
        q = np.ascontiguousarray(q, dtype=np.float32)
        exact_s, exact_p = _exact_top(vectors, q, k, dead, own)
        measured.append((q, own, ids[exact_p], exact_s[:, -1] - 1e-5, exact_s[:, -1]))
    exact_below = round(float(np.quantile(np.concatenate([m[4] for m in measured]), EXACT_BELOW_QUANTILE)), 4)
    farthest = [_farthest(m[4], exact_below) for m in measured]
    before = index.ef, index.threads, index.exact, index.exact_below
    index.threads, index.exact, index.exact_below = None, False, exact_below  # all cores: tuning runs once
    result = {"ef_search": steps[-1], "recall": 0.0}
    try:
        for ef in steps:
            index.ef = ef
            per_kind = [_recall(index, q, own, ids, exact_ids, kth, k, tombstones)
                        for q, own, exact_ids, kth, _ in measured]
            far = [hits[mask] for hits, mask in zip(per_kind, farthest)]
            result = {"ef_search": ef, "recall": round(min(float(h.mean()) for h in per_kind), 4),
                      "recall_far": round(min(float(h.mean()) for h in far), 4)}
            reached = min(_lower_bound(h) for h in per_kind + far) >= target
            if reached:
                break
        index.ef = result["ef_search"]
        if live >= COST_CHECK_MIN:
            result |= _costs(index, np.vstack([q[:COST_QUERIES // len(measured) + 1] for q, *_ in measured]),
                             tombstones)
    finally:
        index.ef, index.threads, index.exact, index.exact_below = before
    cheaper = result.get("hnsw_ms", 0) < result.get("exact_ms", np.inf)
    result["mode"] = "hnsw" if reached and cheaper else "exact"
    result["reached"] = bool(reached)
    index.ef, index.exact = result["ef_search"], result["mode"] == "exact"
    index.exact_below = exact_below if result["mode"] == "hnsw" else None
    index.tuning = result | {"recall_target": target, "tuned_count": live, "probes": probes or "given",
                             "tuned_queries": sum(len(q) for q, *_ in measured)}
    if result["mode"] == "hnsw":
        index.tuning["exact_below"] = exact_below
    return index.tuning


def _farthest(kth: np.ndarray, exact_below: float) -> np.ndarray:
    """Which tuning queries are the FAR_SHARE of those the graph serves (k-th exact cosine at or above
    `exact_below`) with the lowest k-th cosine: a mask."""
    served = kth >= exact_below
    if served.sum() < 2:
        return served
    return served & (kth <= np.quantile(kth[served], FAR_SHARE))


def _lower_bound(hits: np.ndarray) -> float:
    """The lower end of a one-sided 95 % confidence interval of mean recall (CONFIDENCE_Z standard errors)."""
    if len(hits) < 2:
        return float(hits.mean()) if len(hits) else 1.0
    return float(hits.mean() - CONFIDENCE_Z * hits.std(ddof=1) / np.sqrt(len(hits)))


def _costs(index: FaissIndex, queries: np.ndarray, tombstones: np.ndarray) -> dict:
    """Median ms a query of `index` at its efSearch and of an exact scan of its stored vectors: one query at a
    time on one thread, as searches run, the two interleaved query by query so that load hits both alike."""
    import time

    times: dict[bool, list[float]] = {False: [], True: []}
    index.threads = 1
    for q in queries:
        for exact in (False, True):
            index.exact = exact
            t0 = time.perf_counter()
            index.search(q[None, :], 10, excluded_ids=tombstones)
            times[exact].append(time.perf_counter() - t0)
    return {"hnsw_ms": round(1000 * float(np.median(times[False])), 2),
            "exact_ms": round(1000 * float(np.median(times[True])), 2)}


def search_line(ann: dict) -> str | None:
    """How a FAISS index searches, in one line for `status`, `check` and `index`: exact (flat), HNSW at its
    measured efSearch, or exact over an HNSW file's vectors and why (see `tune_ef_search`); None for another
    backend's manifest."""
    if ann.get("backend", "faiss") != "faiss" or "type" not in ann:
        return None
    if ann["type"] != "hnsw":
        return "exact search (flat index)"
    if "ef_search" not in ann:
        return "HNSW efSearch not measured yet (the next `searchlm index` run measures it)"
    def number(value) -> bool:  # a hand-edited manifest's odd value is shown as it is, never raised on
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def shown(value, spec: str) -> str:
        return format(value, spec) if number(value) else str(value)

    recall, target, ef = ann.get("recall", 0.0), ann.get("recall_target", RECALL_TARGET), ann["ef_search"]
    made = "written from the text of" if ann.get("probes") == "text" else "made from"
    probes = f"{ann.get('tuned_queries')} probe queries {made} {shown(ann.get('tuned_count', 0), ',')} chunks"
    farthest = (f" ({shown(ann['recall_far'], '.3f')} on the quarter farthest from the data)"
                if "recall_far" in ann else "")
    if ann.get("mode") != "exact":
        far = ann.get("exact_below")
        far = (f"; queries whose 10th hit scores below {shown(far, '.2f')} searched exactly" if far is not None
               else "")
        return (f"HNSW efSearch {ef}: recall@10 {shown(recall, '.3f')}{farthest} against exact search on {probes} "
                f"(target {target}{far})")
    reached = f"HNSW reached recall@10 {shown(recall, '.3f')}{farthest} at efSearch {ef}"
    mean_reached = number(recall) and number(target) and recall >= target
    # "reached": the tuner's own verdict (95 % bounds, farthest quarter); older manifests lack it: the mean decides
    if ann.get("reached", mean_reached) is True and number(ann.get("hnsw_ms")) and number(ann.get("exact_ms")):
        why = f"{reached} but took {ann['hnsw_ms']} ms a query, an exact scan {ann['exact_ms']} ms"
    elif mean_reached:  # the mean reached it; its 95 % bound, or the farthest quarter's, did not
        why = f"{reached}: not surely >= target {target} (95 % confidence)"
    else:
        why = f"{reached} < target {target}"
    return f"exact search ({why}, on {probes})"


def _recall(index: FaissIndex, queries: np.ndarray, own: np.ndarray | None, ids: np.ndarray,
            exact_ids: np.ndarray, kth: np.ndarray, k: int, tombstones: np.ndarray) -> np.ndarray:
    """recall@k of each query on `index` as it searches now: a hit is in the exact top k or scores as high as its
    k-th; a query's own stored vector (`own`) is left out of its results."""
    scores, found = index.search(queries, k + (own is not None), excluded_ids=tombstones)
    hits = np.zeros(len(queries))
    for i in range(len(queries)):
        keep = found[i] != (ids[own[i]] if own is not None else -2)
        got, got_s = found[i][keep][:k], scores[i][keep][:k]
        hits[i] = np.sum(np.isin(got, exact_ids[i]) | (got_s >= kth[i]) & (got >= 0))
    return hits / k


class FaissStore(VectorIndex):
    """One index's FAISS file, kept in step with SQLite's change log."""

    name = "faiss"
    files = (FAISS_FILE,)

    @classmethod
    def search_line(cls, ann: dict) -> str | None:
        return search_line(ann)

    def __init__(self, index_dir: Path, manifest, store, spec=None, warm: bool = False, in_memory: bool = False):
        self.path = index_dir / FAISS_FILE
        self.in_memory = in_memory  # built from SQLite, never read or written (see stores.fallback.sqlite_store)
        self.manifest = manifest
        self.store = store
        self.warm = warm
        self._index: FaissIndex | None = None
        self._tombstones = np.zeros(0, dtype=np.int64)

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def index(self) -> FaissIndex:
        """The FAISS file as SQLite says it should be: pending changes applied in memory (a run that was
        interrupted, or is writing now), or rebuilt from SQLite when the file is missing or does not match."""
        if self._index is None:
            index = self._read()
            if index is None:
                index = self._build(self.store)
            elif self.store.has_pending_vector_changes():
                self._tombstones = np.asarray(self.store.tombstones(), dtype=np.int64)
                self._apply(index, self.store)
            else:
                self._tombstones = np.asarray(self.store.tombstones(), dtype=np.int64)
                if not self._matches(index, self.store):
                    index = self._build(self.store)
            if self.warm:
                index.to_gpu()
            self._index = index
        return self._index

    def _read(self, mmap: bool = True) -> FaissIndex | None:
        """The file, memory-mapped for searching; read into memory for editing (a mapped index is read-only, and
        copying it costs twice a plain read: 4.4 s against 0.8 s for 50k vectors under load)."""
        if self.in_memory or not self.path.is_file():
            return None
        why = self.quick_problem()
        if why:  # derived data: SQLite holds every vector, and the searcher or the run rebuilds it from there
            log.warning("index '%s': %s; searching the vectors stored in SQLite (run `searchlm check --name %s "
                        "--repair`)", self.manifest.name, why, self.manifest.name)
            return None
        try:
            # A GPU copy only pays off in a long-lived process: CUDA start-up costs more than a cold search.
            # One OpenMP thread in a server too: its concurrent requests are the parallelism, and 30 request
            # threads each starting a team of OpenMP threads on 2 cores spent more time handing off than searching.
            index = FaissIndex.load(self.path, self.manifest.ann.get("type", "flat"), use_gpu=False, threads=1,
                                     mmap=mmap)
        except Exception:  # a damaged file is derived data: SQLite rebuilds it
            return None
        ann = self.manifest.ann
        if isinstance(ann.get("ef_search"), int) and ann["ef_search"] > 0:
            index.ef = ann["ef_search"]
            index.tuning = {key: ann[key] for key in TUNING_KEYS if key in ann}
            index.exact = ann.get("mode") == "exact"
            index.exact_below = ann.get("exact_below") if isinstance(ann.get("exact_below"), float) else None
        return index

    def _current(self) -> bool:
        """The manifest describes the files as they are now (no run was interrupted between them)."""
        return self.manifest.ann.get("generation") == self.store.generation

    def quick_problem(self) -> str | None:
        """Cheap (a stat): the FAISS file is not the one the manifest recorded; None when it is, or when the
        manifest records the state of another generation (an interrupted run: the file is rebuilt anyway)."""
        if self.in_memory or not self._current():
            return None
        return integrity.quick_problem(self.path.parent, self.manifest.files, [self.path.name])

    def _build(self, store) -> FaissIndex:
        count = store.counts()[1]
        self._tombstones = np.zeros(0, dtype=np.int64)
        index = FaissIndex.build(self.manifest.dimension, store.iter_vectors(), count, choose_type(count))
        index.threads = 1  # as a loaded one (see _read)
        return index

    def __len__(self) -> int:
        return len(self.index) - len(self._tombstones)

    def warm_up(self) -> None:
        self.warm = True
        self.index.to_gpu()

    def search(self, query: np.ndarray, k: int, flt: ChunkFilter | None = None) -> dict[int, float]:
        index = self.index
        if len(self) == 0:
            return {}
        allowed = None
        if flt:
            allowed = self.store.filtered_chunk_ids(*flt.sql())
            if len(allowed) == 0:
                return {}
        scores, ids = index.search(query, k, allowed, None if allowed is not None else self._tombstones)
        return {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}

    # -- writing ------------------------------------------------------------------------------------------
    def _apply(self, index: FaissIndex, store) -> int:
        """Apply the change log to `index` (idempotent). Returns the last log seq applied."""
        seq, changes = store.pending_vector_changes()
        if not changes:
            return seq
        held = index.ids()
        wanted = np.fromiter((c for c, op in changes.items() if op == 1), dtype=np.int64)
        gone = np.fromiter((c for c, op in changes.items() if op == 0), dtype=np.int64)
        gone = gone[np.isin(gone, held)]
        adds = wanted[~np.isin(wanted, held)]  # a refreshed chunk (its document renamed) keeps its vector
        if len(gone):
            if index.kind == "flat":
                index.remove(gone)
            else:
                self._tombstones = np.union1d(self._tombstones, gone)
        if len(adds):
            found = store.vectors_by_id(adds.tolist())
            ids = np.fromiter(found, dtype=np.int64, count=len(found))
            if len(ids):
                index.add(ids, np.vstack([found[int(i)] for i in ids]))
        return seq

    def sync(self, store, manifest, progress=None) -> None:
        """Bring the FAISS file in step with SQLite in time proportional to the change; rebuild it from SQLite
        only when it is missing, changes type (flat -> HNSW past the threshold) or holds too many tombstones.
        Order: the file is replaced atomically first, then the log is cleared, so a kill at any point leaves a
        file the next reader or run can repair."""
        self.manifest = manifest
        count = store.counts()[1]
        pending = store.has_pending_vector_changes()
        index = self._read(mmap=not pending)
        if index is not None:
            self._tombstones = np.asarray(store.tombstones(), dtype=np.int64)
        if index is not None and not pending and self._matches(index, store):
            self._tune(index, manifest)  # the file is unchanged: efSearch is a search-time setting, in the manifest
            self._index = index
            self._record(manifest, store, index)
            return
        seq, _ = store.pending_vector_changes()
        # No log to repair a file that does not match: it is from an older searchlm or a run killed before it
        # recorded the file; rebuild it.
        rebuild = index is None or not pending or (index.kind == "flat" and choose_type(count) == "hnsw")
        if not rebuild:
            seq = self._apply(index, store)
            rebuild = (
                len(index) - len(self._tombstones) != count
                or len(self._tombstones) > TOMBSTONE_SHARE * max(len(index), 1)
            )
        if rebuild:
            index = self._build(store)
        self._tune(index, manifest)
        index.save(self.path)
        store.clear_vector_changes(seq, self._tombstones.tolist())
        self._index = index
        self._record(manifest, store, index)

    def _matches(self, index: FaissIndex, store) -> bool:
        """With no pending changes, the file is this store's if the manifest recorded it for the store's current
        generation and it holds as many live vectors as recorded there (a file from an older searchlm, or
        one left behind by a run killed before it recorded it, is rebuilt)."""
        ann = self.manifest.ann  # its count, not SQLite's count(*): that scan costs a cold search ~40 ms at 1M chunks
        return (ann.get("backend", "faiss") == "faiss" and ann.get("generation") == store.generation
                and len(index) - len(self._tombstones) == ann.get("count")
                and index.index.d == self.manifest.dimension)  # a file of another model's vectors is not ours

    def _tune(self, index: FaissIndex, manifest) -> bool:
        """Measure efSearch (`tune_ef_search`) for an HNSW index never measured, measured for another target or
        by an older tuner, grown by RETUNE_GROWTH since, or measured on vector-made probes while its folder now
        holds its query encoder; on queries written from its own text (`chunk_text_probes`) where it does.
        Returns whether it measured."""
        if index.kind != "hnsw":
            return False
        target = float(manifest.ann.get("recall_target") or RECALL_TARGET)
        live = len(index) - len(self._tombstones)
        done = index.tuning
        current = (done.get("recall_target") == target and done.get("tuned_count", 0) * RETUNE_GROWTH > live
                   and done.get("tuned_count", 0) <= live * RETUNE_GROWTH
                   and "recall_far" in done)  # else measured by an older tuner
        if current and done.get("probes") == "text":
            return False
        encoder = self._encoder()  # loaded once: it decides below and writes the probes
        if current and encoder is None:  # measured on vector-made probes, and still none to write text ones
            return False
        queries = None
        if encoder is not None:
            queries = chunk_text_probes(self.store, np.setdiff1d(index._positions_ids(), self._tombstones), encoder)
        tune_ef_search(index, target, self._tombstones, queries=queries,
                       probes="text" if queries is not None else None)
        index.threads = 1  # as a loaded one (see _read)
        return True

    def _encoder(self):
        """The index folder's own query encoder, loaded, or None: an in-memory store, an encoder missing or
        damaged (`check --repair` puts it back), or one that does not load or gives vectors of another size."""
        from searchlm.embed.cache import encoder_problem
        from searchlm.indexing.manifest import ENCODER_DIR

        folder = self.path.parent
        if self.in_memory or encoder_problem(folder, recorded=self.manifest.files) is not None:
            return None
        from searchlm.embed.onnx import OnnxEmbedder

        try:
            encoder = OnnxEmbedder(folder / ENCODER_DIR)
            if encoder.embed(["a probe"]).shape[-1] != self.manifest.dimension:
                return None
        except Exception as exc:  # tuning falls back to vector-made probes; searches report the encoder itself
            log.warning("tuning HNSW without text probes: the query encoder did not load (%s)", exc)
            return None
        return encoder

    # -- checking -----------------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """What is wrong with the FAISS file, one line each: missing, of another digest, unreadable, of another
        dimension or count, holding ids SQLite does not, or vectors that are not finite unit vectors."""
        store, manifest = self.store, self.manifest
        (count,) = store.conn.execute("SELECT count(*) FROM chunks WHERE vector IS NOT NULL").fetchone()
        current = self._current()
        if not self.path.is_file():
            if not current:
                return [f"{FAISS_FILE} is older than the database (an interrupted run): it was not written yet"]
            return [f"{FAISS_FILE} is missing"]
        if current:
            damaged = integrity.verify(self.path.parent, manifest.files, [FAISS_FILE])
            if damaged:
                return damaged
        try:
            index = FaissIndex.load(self.path, manifest.ann.get("type", "flat"), use_gpu=False)
        except (RuntimeError, MemoryError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
            return [f"{FAISS_FILE} cannot be read ({reason})"]
        if index.index.d != manifest.dimension:
            return [f"{FAISS_FILE} has dimension {index.index.d}, not {manifest.dimension}"]
        live = len(index) - int(manifest.ann.get("tombstones", 0))  # HNSW keeps removed ids until rebuilt
        if not current or store.has_pending_vector_changes():
            # Killed between a commit and the FAISS save: the file is behind, and a searcher catches it up.
            if live != count:
                return [f"{FAISS_FILE} is older than the database (an interrupted run): it holds {live} vectors "
                        f"for {count} chunks"]
            return [f"{FAISS_FILE} is older than the database (an interrupted run)"]
        if live != count:
            return [f"{FAISS_FILE} holds {live} vectors for {count} chunks"]
        return _content_problems(index, store, FAISS_FILE)

    def repair(self) -> None:
        """Rebuild the FAISS file from the vectors in SQLite (no re-encoding) and record it in the manifest."""
        self.path.unlink(missing_ok=True)
        self._index = None
        self.sync(self.store, self.manifest)

    def _record(self, manifest, store, index: FaissIndex) -> None:
        integrity.record(self.path.parent, manifest.files, [self.path.name])
        target = manifest.ann.get("recall_target")
        manifest.ann = {"backend": "faiss", "type": index.kind, "generation": store.generation, "count": len(index) - len(self._tombstones),
                        "tombstones": len(self._tombstones)}
        if target is not None:  # asked for with --recall / SEARCHLM_RECALL; kept for later runs
            manifest.ann["recall_target"] = target
        if index.kind == "hnsw":
            manifest.ann.update({key: index.tuning[key] for key in TUNING_KEYS if key in index.tuning})


SAMPLE = 2048  # vectors compared with SQLite's by `verify`


def _content_problems(index: FaissIndex, store, name: str) -> list[str]:
    """A FAISS file that loads can still hold garbage: ids SQLite does not have, vectors that are not finite unit
    vectors, or vectors other than the stored ones (a sample)."""
    import faiss

    ids = index.ids()
    wanted = store.chunk_ids()
    tomb = np.asarray(store.tombstones(), dtype=np.int64)
    live = ids[~np.isin(ids, tomb)] if len(tomb) else ids
    if len(live) != len(wanted) or not np.array_equal(np.sort(live), np.sort(wanted)):
        return [f"{name} holds chunk ids the database does not have"]
    inner = faiss.downcast_index(index.index.index)
    storage = faiss.downcast_index(inner.storage) if hasattr(inner, "storage") else inner
    n = storage.ntotal
    if n == 0:
        return []
    rng = np.random.default_rng(0)
    positions = np.sort(rng.choice(n, size=min(SAMPLE, n), replace=False))
    vectors = np.vstack([storage.reconstruct(int(p)) for p in positions])
    if not np.isfinite(vectors).all():
        return [f"{name} holds vectors that are not finite numbers"]
    norms = np.linalg.norm(vectors, axis=1)
    if np.abs(norms - 1.0).max() > 1e-2:
        return [f"{name} holds vectors of length {float(norms[np.argmax(np.abs(norms - 1))]):.3g}, not unit vectors"]
    stored = store.vectors_by_id(ids[positions].tolist())
    for p, v in zip(positions, vectors):
        s = stored.get(int(ids[p]))
        if s is not None and (s.shape != v.shape or np.abs(s - v).max() > 1e-4):
            return [f"{name} holds vectors other than the ones stored for their chunks"]
    return []
