"""A per-user cache of ONNX encoder exports: one export per model fingerprint, made once, not once per index
(the export is ~174 MB with its runtime-optimized copy).

An index's `encoder/` folder is a private copy of the cached export, verified file by file against the digests
recorded in the cache when the export was made (`digests.json`): damage to one index's encoder (or to the cache)
never reaches another index, and `check --repair` copies it again. The digests of the copy go into the index's
manifest (`manifest.files`, see `searchlm.indexing.integrity`), which `check` verifies and a search compares by size and
time. `SEARCHLM_SHARED_ENCODER=1` hard-links the cached files instead, or links the cached folder from another
file system (no extra space for many indexes of one model, at the price of sharing any damage; check and repair
still work per index).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from searchlm.indexing import integrity
from searchlm.cache import cache_home, model_fingerprint
from searchlm.errors import IndexDamagedError
from searchlm.indexing.manifest import ENCODER_DIR

DIGESTS = "digests.json"  # in a cached export: the digest of each file, written right after the export


def cached_export(model_id: str, model_path: str) -> Path:
    """Where the model's ONNX export lives in the shared cache: one folder per model fingerprint (a hub name's
    hash when the model has no local files)."""
    key = model_fingerprint(model_path) or hashlib.sha256(model_id.encode()).hexdigest()[:16]
    return cache_home() / "onnx" / key


def install_encoder(export, model_id: str, model_path: str, target: Path) -> dict:
    """Put a verified private copy of the model's ONNX export at `target` (exported into the shared cache first
    by `export(folder)` when it is missing, damaged or unrecorded there). Returns the copy's manifest entries
    ({'encoder/NAME': {size, mtime_ns, digest}}). An unwritable cache gets an export straight into `target`."""
    cached = cached_export(model_id, model_path)
    for attempt in range(2):
        reference = _reference(cached) if attempt == 0 else None
        if reference is None:
            try:
                export(cached)
                reference = _write_reference(cached)
            except PermissionError:
                _remove(target)
                export(target)  # an unwritable cache still leaves a working index
                return _entries(target)
        if _install_copy(cached, reference, target):
            return _entries(target, reference)
    raise IndexDamagedError(f"the ONNX encoder exported to {cached} does not match its own digests after a fresh "
                            "export (check the disk, then run the command again)")


def shared_encoder(export, model_id: str, model_path: str) -> Path:
    """The cached ONNX export of the model, exported there first by `export(folder)` when it is missing or does
    not match its digests: what a search replica with no index folder (and so no `encoder/`) loads."""
    cached = cached_export(model_id, model_path)
    if _reference(cached) is None:
        export(cached)
        _write_reference(cached)
    return cached


def _reference(cached: Path) -> dict | None:
    """The cached export's recorded digests, when the export is whole (an export from before digests were
    recorded gets them now)."""
    if encoder_problem(cached.parent, cached.name) is not None:
        return None
    try:
        data = json.loads((cached / DIGESTS).read_text(encoding="utf-8"))
        if isinstance(data, dict) and data:
            return data
    except (OSError, ValueError):
        pass
    try:
        return _write_reference(cached)
    except OSError:
        return None


def _write_reference(cached: Path) -> dict:
    digests = {rel: integrity.file_digest(cached / rel) for rel in _files(cached)}
    tmp = cached / f".{DIGESTS}.tmp"
    tmp.write_text(json.dumps(digests, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, cached / DIGESTS)
    return digests


def _files(folder: Path) -> list[str]:
    return [rel for rel in integrity.files_under(folder, ".", skip=lambda n: n.startswith("."))
            if rel != DIGESTS]


def _install_copy(cached: Path, reference: dict, target: Path) -> bool:
    """Copy (or, with SEARCHLM_SHARED_ENCODER=1, hard-link) the cached export into a temp folder beside
    `target`, check every file against `reference`, then swap it in. False when a file does not match (the
    cache is damaged)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".encoder-", dir=target.parent))
    shared = os.environ.get("SEARCHLM_SHARED_ENCODER", "") not in ("", "0")
    try:
        made = tmp / "e"
        copied = False
        if shared:
            try:
                shutil.copytree(cached, made, copy_function=os.link, ignore=_ignore)
            except (OSError, shutil.Error):  # another file system: a link to the shared folder
                shutil.rmtree(made, ignore_errors=True)
                os.symlink(cached.resolve(), made, target_is_directory=True)
            copied = True
        if copied and set(_files(made)) != set(reference):
            return False
        if not copied:  # a private copy, checked byte for byte against the export's digests
            shutil.copytree(cached, made, ignore=_ignore)
            if set(_files(made)) != set(reference):
                return False
            for rel, digest in reference.items():
                if integrity.file_digest(made / rel) != digest:
                    return False
        os.chmod(made, 0o755)
        _remove(target)
        os.replace(made, target)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ignore(folder, names):
    return [n for n in names if n == DIGESTS or n.startswith(".")]


def _entries(target: Path, reference: dict | None = None) -> dict:
    """Manifest entries of the encoder's files, as paths in the index folder (digests from `reference` when the
    copy was just checked against it)."""
    files: dict = {}
    for rel in _files(target):
        st = (target / rel).stat()
        digest = (reference or {}).get(rel) or integrity.file_digest(target / rel)
        files[f"{target.name}/{rel}"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "digest": digest}
    return files


def encoder_entries(target: Path) -> dict:
    """Manifest entries of an encoder folder's files, digested now (an encoder written in place, as `adapt`'s)."""
    return _entries(target)


def record_encoder(manifest, entries: dict) -> None:
    """Replace the manifest's encoder entries with `entries` (what `install_encoder` returned)."""
    for key in [k for k in manifest.files if k.startswith(ENCODER_DIR + "/")]:
        del manifest.files[key]
    manifest.files.update(entries)


def _remove(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)


ENCODER_FILES = ("encoder.onnx", "tokenizer.json", "onnx_encoder.json")


def encoder_problem(index_dir: Path, folder_name: str = ENCODER_DIR, recorded: dict | None = None,
                    deep: bool = False) -> str | None:
    """What is wrong with the index's ONNX query encoder (or with any export folder), or None. With `recorded`
    (a manifest's `files`), its files are compared with what was recorded: by size and time (a stat each), or
    with `deep`, by digest."""
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
    if recorded:
        rels = integrity.under(recorded, folder_name + "/")
        if deep:
            damaged = integrity.verify(index_dir, recorded, rels)
            return damaged[0] if damaged else None
        return integrity.quick_problem(index_dir, recorded, rels)
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
