"""The per-user cache folder, and the fingerprint that tells one model's files from another's.

`cache_home()` holds what is derived from models and worth keeping between runs: ONNX exports of encoders
(`onnx/`), generators converted from GGUF (`generators/`). `model_fingerprint` names those entries, and is part of
a reranker's score-cache key, so a model retrained in the same folder never meets the old model's derived files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_home() -> Path:
    """$SEARCHLM_CACHE, default ~/.cache/searchlm."""
    return Path(os.environ.get("SEARCHLM_CACHE") or Path.home() / ".cache" / "searchlm")


def model_fingerprint(model: str | Path) -> str:
    """16 hex characters that change when a local model's files are rewritten: its resolved path plus the names,
    sizes and modification times of its files (nothing is read). Hidden files and searchlm's own `searchlm-*`
    settings are left out: writing a tuned blend weight changes no model output. "" for a name that is not a
    local path (a hub name: the name itself is its identity)."""
    path = Path(model).expanduser()
    if not path.exists():
        return ""
    root = path.resolve()
    h = hashlib.sha256(str(root).encode())
    files = sorted(root.rglob("*")) if root.is_dir() else [root]
    for f in files:
        rel = f.relative_to(root) if root.is_dir() else Path(f.name)
        if not f.is_file() or any(p.startswith(".") for p in rel.parts) or f.name.startswith("searchlm-"):
            continue
        st = f.stat()
        h.update(f"|{rel.as_posix()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
