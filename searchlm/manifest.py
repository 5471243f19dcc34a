"""`manifest.json`: what an index folder holds and how it was built, so a reader can refuse a mismatch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchlm import __version__
from searchlm.errors import IndexMismatchError, IndexNotFoundError
from searchlm.fileio import write_json_atomic
from searchlm.store import SCHEMA_VERSION

MANIFEST = "manifest.json"
DB_FILE = "index.db"
FAISS_FILE = "vectors.faiss"
ENCODER_DIR = "encoder"


@dataclass
class Manifest:
    name: str
    root: str
    model: str
    dimension: int
    metric: str = "inner_product"  # on L2-normalized vectors: inner product = cosine
    schema_version: int = SCHEMA_VERSION
    searchlm_version: str = __version__
    chunker: dict = field(default_factory=dict)
    precision: str = ""
    documents: int = 0
    chunks: int = 0
    store: dict = field(default_factory=lambda: {"backend": "faiss"})  # the vector store, see stores/base.py
    ann: dict = field(default_factory=dict)  # the store's state, e.g. FAISS {"type": "flat"|"hnsw", "generation", "count"}
    readers: dict = field(default_factory=dict)  # kind -> reader version the documents were extracted with (1 if absent)
    updated_at: float = 0.0

    @classmethod
    def load(cls, index_dir: Path) -> "Manifest":
        path = index_dir / MANIFEST
        if not path.is_file():
            raise IndexNotFoundError(
                f"index '{index_dir.name}' not found in {index_dir.parent}",
                f"create it with Index('{index_dir.name}').update(FOLDER)", f"run `searchlm index DIR --name {index_dir.name}`",
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        manifest = cls(**known)
        if manifest.schema_version > SCHEMA_VERSION:
            raise IndexMismatchError(
                f"index '{manifest.name}' has schema {manifest.schema_version}, newer than this searchlm "
                f"({__version__}) reads; upgrade searchlm (pip install -U searchlm)"
            )
        return manifest

    def save(self, index_dir: Path) -> None:
        write_json_atomic(index_dir / MANIFEST, asdict(self))


def list_indexes(home: Path) -> list[Manifest]:
    """The readable manifests of the indexes under `home`, by name; damaged ones are skipped."""
    if not home.is_dir():
        return []
    out = []
    for child in sorted(home.iterdir()):
        if (child / "manifest.json").is_file():
            try:
                out.append(Manifest.load(child))
            except Exception:
                continue
    return out
