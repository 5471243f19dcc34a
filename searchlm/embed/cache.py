"""A per-user cache of ONNX encoder exports: one shared copy per model fingerprint, exported once, not once per
index (the export is ~174 MB with its runtime-optimized copy).

An index's `encoder/` folder gets hard links to the cached files when the index home and the cache share a
file system: no extra space, and the index keeps working if the cache is deleted. Across file systems (where a
hard link is impossible) `encoder/` is a symlink to the shared copy instead of a 174 MB copy; if that copy is
deleted, `searchlm check --repair` or the next `searchlm index` exports it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from searchlm.cache import cache_home, model_fingerprint
from searchlm.manifest import ENCODER_DIR


def install_encoder(export, model_id: str, model_path: str, target: Path) -> None:
    """Put an ONNX export of the model at `target`: linked from the shared cache (exported there first by
    `export(folder)` when it is missing or damaged). An unwritable cache gets an export straight into `target`."""

    try:
        cached = shared_encoder(export, model_id, model_path)
    except PermissionError:
        _replace(target, export)  # an unwritable cache still leaves a working index
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".encoder-", dir=target.parent))
    try:
        try:
            shutil.copytree(cached, tmp / "e", copy_function=os.link)
            made = tmp / "e"
        except (OSError, shutil.Error):  # another file system: share the cached copy instead of copying it
            os.symlink(cached.resolve(), tmp / "link", target_is_directory=True)
            made = tmp / "link"
        _remove(target)
        os.replace(made, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def shared_encoder(export, model_id: str, model_path: str) -> Path:
    """The shared cached ONNX export of the model (exported there first by `export(folder)` when it is missing or
    damaged): what an index's `encoder/` links to, and what a search replica with no index folder loads."""
    key = model_fingerprint(model_path) or hashlib.sha256(model_id.encode()).hexdigest()[:16]  # a hub name
    cached = cache_home() / "onnx" / key
    if encoder_problem(cached.parent, cached.name) is not None:
        export(cached)
    return cached


def _replace(target: Path, export) -> None:
    _remove(target)
    export(target)


def _remove(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)


ENCODER_FILES = ("encoder.onnx", "tokenizer.json", "onnx_encoder.json")


def encoder_problem(index_dir: Path, folder_name: str = ENCODER_DIR) -> str | None:
    """What is wrong with the index's ONNX query encoder (or with any export folder), or None."""
    folder = index_dir / folder_name
    if folder.is_symlink() and not folder.exists():
        return f"{folder_name}/ points at a shared copy that is gone ({os.readlink(folder)})"
    if not folder.is_dir():
        return f"{folder_name}/ is missing"
    for name in ENCODER_FILES:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            return f"{folder_name}/{name} is missing or empty"
    for name in ("tokenizer.json", "onnx_encoder.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return f"{folder_name}/{name} is damaged ({type(exc).__name__})"
        if not isinstance(data, dict):
            return f"{folder_name}/{name} is damaged (not a JSON object)"
    return None


def model_encoder(model: str) -> Path:
    """The shared ONNX query encoder of `model`, exported from the model on this machine first when the cache
    lacks it: what a search replica loads, having no index folder (and so no `encoder/`)."""
    import warnings

    from searchlm.embed.base import resolve_model

    def export(folder: Path) -> None:
        from searchlm.embed.onnx import export_onnx
        from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(SentenceTransformerEmbedder(model, device="cpu").model, model, folder)

    return shared_encoder(export, model, resolve_model(model))
