"""The FAISS index, derived from the vectors stored in SQLite.

Type by size: exact `IndexFlatIP` below `HNSW_THRESHOLD` vectors, HNSW above it (recall@10 >= 0.98 against
exact search, tested); both wrapped in `IndexIDMap2` so FAISS ids are chunk ids, and the type is recorded in the
manifest. Flat files are memory-mapped on load (no copy: a cold search touches only the pages it reads). When
faiss reports a GPU, unfiltered searches of a flat index run on a GPU copy; filtered ones (an `IDSelector`, which
GPU indexes do not take) and all edits stay on the CPU index.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from searchlm.fileio import temp_path_for

HNSW_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256  # recall@10 0.999 on 100k MiniLM-like vectors (128: 0.987); ~1 ms a query


def choose_type(count: int) -> str:
    return "hnsw" if count >= HNSW_THRESHOLD else "flat"


class VectorIndex:
    """add / remove / search / save / load over one FAISS index of normalized vectors."""

    def __init__(self, index, kind: str):
        self.index = index  # always on the CPU
        self.kind = kind
        self._gpu = None  # a GPU copy for unfiltered searches, see to_gpu()
        self._mapped = False  # loaded with IO_FLAG_MMAP_IFC: read-only until _own() copies it
        self.threads: int | None = None  # OpenMP threads for a search; None: faiss's default

    @classmethod
    def empty(cls, dimension: int, kind: str = "flat") -> "VectorIndex":
        import faiss

        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = faiss.IndexFlatIP(dimension)
        return cls(faiss.IndexIDMap2(inner), kind)

    @classmethod
    def build(cls, dimension: int, batches, count: int, kind: str | None = None) -> "VectorIndex":
        """Build from (ids, vectors) batches, e.g. `Store.iter_vectors()`."""
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

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None):
        """Top-k (scores, ids) per query; `allowed_ids` restricts the search before the cut (filters)."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self)))
        params = None
        if allowed_ids is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self._gpu is not None:
            return self._gpu.search(queries, k)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        if not self.threads:
            return self.index.search(queries, k, params=params)
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.threads)
        try:
            return self.index.search(queries, k, params=params)
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
    def load(cls, path: Path, kind: str = "flat", use_gpu: bool = True, threads: int | None = None) -> "VectorIndex":
        """Read a FAISS file; flat ones are memory-mapped rather than copied.

        `threads` caps faiss's OpenMP threads during this index's searches. A one-shot search wants 1: measured
        here, one query over 50k vectors takes 3 ms of CPU on one thread and 30 ms on two, lost to OpenMP hand-offs.
        The cap is undone after each search: OpenMP's thread count is process-wide, and left at 1 it made the torch
        models that run next in the same process (LM reranker, generator) single-threaded (3.7 s instead of 2.1 s
        to rerank 20 passages)."""
        import faiss

        mmap = kind == "flat" and hasattr(faiss, "IO_FLAG_MMAP_IFC")
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
