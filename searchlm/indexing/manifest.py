"""`manifest.json`: what an index folder holds and how it was built, so a reader can refuse a mismatch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchlm import __version__
from searchlm.errors import IndexDamagedError, IndexMismatchError, IndexNotFoundError, SearchlmError
from searchlm.fileio import write_json_atomic
from searchlm.indexing.database import SCHEMA_VERSION
from searchlm.stores import DEFAULT_STORE

MANIFEST = "manifest.json"
DB_FILE = "index.db"
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
    store: dict = field(default_factory=lambda: {"backend": DEFAULT_STORE})  # the store, see stores/base.py
    ann: dict = field(default_factory=dict)  # the store's state, e.g. {"type": "flat"|"hnsw", "generation", "count"}
    # Derived files (the store's files, the encoder's) -> {size, mtime_ns, digest}: see integrity.py
    files: dict = field(default_factory=dict)
    readers: dict = field(default_factory=dict)  # kind -> reader version the documents were extracted with (1 if absent)
    updated_at: float = 0.0
    # Made anew each time an index is created (indexes from before it have ""): a server that opened an index
    # tells it from one dropped and created again under the same name (see identity.py).
    index_id: str = ""
    # Set by `searchlm adapt` (see adapt/): the fine-tuned encoder's folder inside the index ("model", relative),
    # the fusion weight tuned with it ("dense_weight"), and what it was trained on and how it did. Empty: the
    # index encodes with `model` as given.
    adapted: dict = field(default_factory=dict)

    @classmethod
    def load(cls, index_dir: Path) -> "Manifest":
        """Read and check `manifest.json`. A damaged one is an IndexDamagedError naming `check --repair`; a
        schema newer than this searchlm (or one it does not know) is refused, never rebuilt over."""
        path = index_dir / MANIFEST
        if not path.is_file():
            raise IndexNotFoundError(
                f"index '{index_dir.name}' not found in {index_dir.parent}",
                f"create it with Index('{index_dir.name}').update(FOLDER)", f"run `searchlm index DIR --name {index_dir.name}`",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise damaged(index_dir.name, f"{type(exc).__name__}: {str(exc)[:80]}") from None
        return cls.from_json(data, index_dir.name)

    @classmethod
    def from_json(cls, data, name: str) -> "Manifest":
        if not isinstance(data, dict):
            raise damaged(name, f"a JSON {type(data).__name__}, not an object")
        missing = [k for k in ("name", "root", "model", "dimension") if k not in data]
        if missing:
            raise damaged(name, f"missing {', '.join(missing)}")
        schema = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
            raise IndexMismatchError(
                f"index '{name}' has an unknown schema {str(schema)[:20]!r}; this searchlm ({__version__}) reads "
                f"schema {SCHEMA_VERSION} (rebuild it: `searchlm drop {name}` then `searchlm index DIR --name {name}`)"
            )
        if schema > SCHEMA_VERSION:
            raise IndexMismatchError(
                f"index '{name}' has schema {schema}, newer than this searchlm "
                f"({__version__}) reads; upgrade searchlm (pip install -U searchlm)"
            )
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            manifest = cls(**known)
        except TypeError as exc:
            raise damaged(name, str(exc)[:80]) from None
        for key, kind in (("name", str), ("root", str), ("model", str), ("dimension", int), ("chunker", dict),
                          ("ann", dict), ("files", dict), ("readers", dict), ("adapted", dict), ("documents", int),
                          ("chunks", int)):
            if not isinstance(getattr(manifest, key), kind):
                raise damaged(name, f"'{key}' is not a {kind.__name__}")
        if manifest.dimension < 1:
            raise damaged(name, f"dimension {manifest.dimension}")
        return manifest

    def to_json(self) -> dict:
        return asdict(self)

    def encoder_source(self, index_dir: Path) -> str:
        """What to load to encode this index's passages: its adapted encoder's folder, else `model`."""
        folder = self.adapted.get("model") if self.adapted else None
        return str(index_dir / folder) if folder else self.model

    @property
    def dense_weight(self) -> float | None:
        """The fusion weight tuned for this index's encoder (by `adapt`), or None for the default."""
        weight = self.adapted.get("dense_weight") if self.adapted else None
        return float(weight) if isinstance(weight, (int, float)) else None

    def save(self, index_dir: Path, store=None) -> None:
        """Write `manifest.json` atomically; with `store`, keep a copy in SQLite that `check --repair` restores
        a damaged manifest from."""
        write_json_atomic(index_dir / MANIFEST, asdict(self))
        if store is not None:
            store.save_manifest_copy(json.dumps(asdict(self), sort_keys=True))


def damaged(name: str, why: str) -> IndexDamagedError:
    return IndexDamagedError(
        f"index '{name}': manifest.json is damaged ({why}); run `searchlm check --name {name} --repair`"
    )


def list_indexes(home: Path) -> list[Manifest]:
    """The readable manifests of the indexes under `home`, by name; damaged ones are skipped."""
    if not home.is_dir():
        return []
    out = []
    for child in sorted(home.iterdir()):
        if (child / "manifest.json").is_file():
            try:
                out.append(Manifest.load(child))
            except SearchlmError:  # damaged or from a newer searchlm: `check` says which
                continue
    return out
