"""What a search reads when an index's own store is damaged or gone: SQLite's copies, as a store."""

from __future__ import annotations

from pathlib import Path

from searchlm.stores.base import ComposedStore
from searchlm.stores.faiss import FaissStore
from searchlm.stores.fts5 import Fts5Keywords


def sqlite_store(index_dir: Path, manifest, store) -> ComposedStore:
    """The vectors stored in SQLite, searched exactly in memory, and SQLite's own keyword index."""
    vectors = FaissStore(index_dir, manifest, store, in_memory=True)
    return ComposedStore(vectors, Fts5Keywords(index_dir, manifest, store, vectors=vectors))
