"""A per-user cache of ONNX encoder exports, so each model is exported once, not once per index.

Index folders get hard links to the cached files (a copy across file systems), so an index folder stays
self-contained: deleting the cache never breaks an index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from searchlm.cache import cache_home, model_fingerprint


def install_encoder(export, model_id: str, model_path: str, target: Path) -> None:
    """Put an ONNX export of the model at `target`: from the cache if there, else `export(folder)` into it."""
    from searchlm.embed.onnx import ONNX_FILE

    key = model_fingerprint(model_path) or hashlib.sha256(model_id.encode()).hexdigest()[:16]  # a hub name
    cached = cache_home() / "onnx" / key
    if not (cached / ONNX_FILE).is_file():
        try:
            export(cached)
        except OSError:
            export(target)  # an unwritable cache still leaves a working index
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".encoder-", dir=target.parent))
    try:
        shutil.copytree(cached, tmp / "e", copy_function=_link_or_copy)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / "e", target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
