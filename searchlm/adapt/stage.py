"""The candidate index an adaptation builds beside the live one, and the swap that puts it in place.

The live index is never written until the swap: `adapt` copies it into `<home>/.adapt-<name>/<name>/` (SQLite's
online backup for the database, hard links for everything else), re-encodes every chunk's vector there with the
new encoder (committing the vectors and how far it got in one transaction per batch, so a re-run resumes),
rebuilds the vector index and writes the manifest. Only a candidate that passed the gate is swapped in, with one
`renameat2(RENAME_EXCHANGE)` where Linux has it: a kill at any moment leaves either the old index or the new
one, both complete. Elsewhere two renames do it, and `recover` finishes a swap a kill cut in half.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import time
from pathlib import Path

import numpy as np

from searchlm.indexing.manifest import DB_FILE, ENCODER_DIR, Manifest
from searchlm.stores.base import vector_files

ENCODED_KEY = "adapt_encoded_upto"  # meta key in the candidate's database: last chunk id re-encoded
BATCH = 64  # chunks re-encoded per committed transaction
_LEAVE_OUT = {DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", f"{DB_FILE}-journal", ENCODER_DIR, ".lock", ".writer"}


def work_dir(index_dir: Path) -> Path:
    """Where an adaptation of `index_dir` keeps its state (beside the index: the swap exchanges folders)."""
    return index_dir.parent / f".adapt-{index_dir.name}"


def candidate_dir(index_dir: Path) -> Path:
    return work_dir(index_dir) / index_dir.name


def make_candidate(index_dir: Path, store, model_dir_name: str | None) -> Path:
    """A fresh copy of the live index to re-encode (any older candidate is removed first)."""
    target = candidate_dir(index_dir)
    if target.exists():
        shutil.rmtree(target)
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    leave_out = _LEAVE_OUT | vector_files(Manifest.load(index_dir))  # re-encoding rebuilds them
    for entry in index_dir.iterdir():
        if entry.name in leave_out or entry.name == model_dir_name or entry.name.startswith(".adapt"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, tmp / entry.name, copy_function=_link_or_copy, symlinks=True)
        else:
            _link_or_copy(entry, tmp / entry.name)
    store.backup_to(tmp / DB_FILE)
    from searchlm.indexing.database import Database

    copy = Database(tmp / DB_FILE, existing=True)
    try:
        copy.set_meta(ENCODED_KEY, "-1")  # the live index may be an adapted one, with its own re-encoding's mark
    finally:
        copy.close()
    os.replace(tmp, target)
    return target


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def reencode(candidate: Path, embedder, progress=None, deadline: float | None = None) -> bool:
    """Encode every chunk of the candidate with `embedder`, after those already done (resumable); True when all
    are done, False when `deadline` (a `time.monotonic()` value) came first."""
    from searchlm.indexing.database import Database

    progress = progress or (lambda phase, done, total: None)
    store = Database(candidate / DB_FILE, existing=True)
    try:
        upto = int(store.get_meta(ENCODED_KEY) or -1)
        rows = store.chunk_outline()
        total = len(rows)
        todo = [r for r in rows if r[0] > upto]
        done = total - len(todo)
        progress("encode", done, total)
        for start in range(0, len(todo), BATCH):
            if deadline is not None and time.monotonic() > deadline:
                return False
            part = todo[start : start + BATCH]
            texts = [embed_text(r[3], r[4], r[5]) for r in part]
            vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
            store.replace_vectors(((r[0], v.tobytes()) for r, v in zip(part, vectors)), ENCODED_KEY, part[-1][0])
            done += len(part)
            progress("encode", done, total)
        return True
    finally:
        store.close()


def embed_text(title: str, heading: str, text: str) -> str:
    """The text the indexer embedded for a stored chunk (its hash is of this text)."""
    from searchlm.indexing.chunking import embed_text_for

    return embed_text_for(title, tuple(heading.split(" > ")) if heading else (), text)


def finish_candidate(candidate: Path, manifest: Manifest, progress=None) -> None:
    """Rebuild the candidate's vector index from its re-encoded vectors and write its manifest."""
    import uuid

    from searchlm.indexing.indexer import rebuild_vectors
    from searchlm.indexing.database import Database

    store = Database(candidate / DB_FILE, existing=True)
    try:
        store.set_meta("generation", str(store.generation + 1))  # other vectors: readers reload theirs
        # Another index now lives under this name: a server holding the old one open reopens it (identity.py).
        manifest.index_id = uuid.uuid4().hex
        manifest.name = candidate.name
        rebuild_vectors(store, manifest, candidate)
        # The candidate's encoder is another model's export: record its digests, or `check` and every search
        # would take it for a damaged copy of the old one.
        from searchlm.embed.cache import encoder_entries, record_encoder

        record_encoder(manifest, encoder_entries(candidate / ENCODER_DIR))
        manifest.updated_at = time.time()
        manifest.save(candidate, store)
    finally:
        store.close()


def swap_in(index_dir: Path) -> None:
    """Put the finished candidate in place of the live index (atomically where the OS can); the old index is
    left at the candidate's path for the caller to delete."""
    candidate = candidate_dir(index_dir)
    if _exchange(candidate, index_dir):
        return
    previous = work_dir(index_dir) / ".previous"
    if previous.exists():
        shutil.rmtree(previous)
    os.rename(index_dir, previous)
    os.rename(candidate, index_dir)  # a kill between the renames: `recover` finishes the swap
    os.rename(previous, candidate)


def recover(index_dir: Path) -> bool:
    """Finish a two-rename swap a kill interrupted (the index folder gone, the candidate complete beside it);
    True when it did."""
    candidate = candidate_dir(index_dir)
    previous = work_dir(index_dir) / ".previous"
    if not index_dir.exists() and (candidate / "manifest.json").is_file() and previous.exists():
        os.rename(candidate, index_dir)
        os.rename(previous, candidate)
        return True
    return False


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
