"""The FAISS index, derived from the vectors stored in SQLite.

Type by size: exact `IndexFlatIP` below `HNSW_THRESHOLD` vectors, HNSW above it; both wrapped in
`IndexIDMap2` so FAISS ids are chunk ids. Flat files are memory-mapped on load (no copy), and searches move to
the GPU when faiss reports one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from searchlm.fileio import temp_path_for

HNSW_THRESHOLD = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def choose_type(count: int) -> str:
    return "hnsw" if count >= HNSW_THRESHOLD else "flat"


class VectorIndex:
    """add / remove / search / save / load over one FAISS index of normalized vectors."""

    def __init__(self, index, kind: str):
        self.index = index
        self.kind = kind

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
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (flat only; HNSW cannot delete, so callers rebuild it from SQLite)."""
        import faiss

        if self.kind != "flat":
            raise NotImplementedError("HNSW indexes are rebuilt from SQLite instead of edited")
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

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
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def save(self, path: Path) -> None:
        import faiss

        index = self.index
        if hasattr(faiss, "index_gpu_to_cpu") and type(index).__name__.startswith("Gpu"):
            index = faiss.index_gpu_to_cpu(index)
        tmp = temp_path_for(path)
        try:
            faiss.write_index(index, str(tmp))
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(cls, path: Path, kind: str = "flat", use_gpu: bool = True) -> "VectorIndex":
        import faiss

        flags = faiss.IO_FLAG_MMAP_IFC if kind == "flat" and hasattr(faiss, "IO_FLAG_MMAP_IFC") else 0
        index = faiss.read_index(str(path), flags)
        loaded = cls(index, kind)
        if use_gpu and kind == "flat":
            loaded._to_gpu()
        return loaded

    def _to_gpu(self) -> None:
        import faiss

        if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0 or not hasattr(faiss, "StandardGpuResources"):
            return
        self._gpu_resources = faiss.StandardGpuResources()
        self.index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.index)
