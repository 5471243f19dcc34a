"""Digests of an index's derived files, recorded in the manifest at each commit, so damage is noticed.

`manifest.files` maps a file's path in the index folder to its size, modification time and digest:

    the store's files             each vector or keyword index's own (stores/: a vector file, segment files)
    encoder/*                     the ONNX query encoder (embed/cache.py)

(A collection on a store server is not a file of ours: its row count and a digest of its chunk ids go in
`manifest.ann`.)

Opening an index compares sizes and modification times only (a `stat` per file: nothing read); a file whose
time changed but not its size is hashed before it is called damaged (a copy that kept the bytes but not the
times). `check` hashes every recorded file. A digest is computed when a file is written and reused while its
size and time stay the same, so a commit that leaves a file alone does not read it again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ALGORITHM = "blake2b"
CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """'blake2b:' + 32 hex characters of the file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return f"{ALGORITHM}:{h.hexdigest()}"


def ids_digest(ids) -> str:
    """A digest of a set of chunk ids (order does not matter): what a store's collection holds against SQLite."""
    import numpy as np

    data = np.sort(np.asarray(ids, dtype=np.int64)).astype("<i8").tobytes()
    return f"{ALGORITHM}:{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def describe(path: Path, previous: dict | None = None) -> dict:
    """{size, mtime_ns, digest} of a file; `previous`'s digest is kept when size and time are unchanged."""
    st = path.stat()
    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if previous and previous.get("size") == st.st_size and previous.get("mtime_ns") == st.st_mtime_ns \
            and previous.get("digest"):
        entry["digest"] = previous["digest"]
    else:
        entry["digest"] = file_digest(path)
    return entry


def record(index_dir: Path, files: dict, rels, prefix: str | None = None) -> None:
    """Record `rels` (paths relative to the index folder) in `files` (a manifest's `files`); with `prefix`,
    entries under it that are not in `rels` are dropped (a folder whose files changed)."""
    rels = list(rels)
    if prefix is not None:
        for key in [k for k in files if k.startswith(prefix) and k not in rels]:
            del files[key]
    for rel in rels:
        files[rel] = describe(index_dir / rel, files.get(rel))


def files_under(index_dir: Path, folder: str, skip=lambda name: False) -> list[str]:
    """The regular files under `index_dir/folder`, as paths relative to `index_dir`, sorted."""
    root = index_dir / folder
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            if not skip(name) and full.is_file() and not full.is_symlink():
                out.append(full.relative_to(index_dir).as_posix())
    return sorted(out)


def quick_problem(index_dir: Path, files: dict, rels) -> str | None:
    """Cheap: a recorded file that is missing, of another size, or of another time and digest; None when all
    hold (or none is recorded)."""
    for rel in rels:
        want = files.get(rel)
        if not want:
            continue
        try:
            st = (index_dir / rel).stat()
        except OSError:
            return f"{rel} is missing"
        if st.st_size != want.get("size"):
            return f"{rel} has {st.st_size} bytes, not the {want.get('size')} written"
        if st.st_mtime_ns != want.get("mtime_ns") and want.get("digest"):
            why = digest_problem(index_dir, rel, want)
            if why:
                return why
    return None


def digest_problem(index_dir: Path, rel: str, want: dict) -> str | None:
    try:
        got = file_digest(index_dir / rel)
    except OSError as exc:
        return f"{rel} cannot be read ({exc.strerror or type(exc).__name__})"
    if got != want.get("digest"):
        return f"{rel} does not match the digest recorded when it was written"
    return None


def verify(index_dir: Path, files: dict, rels) -> list[str]:
    """Deep: every recorded file among `rels` hashed and compared."""
    out = []
    for rel in rels:
        want = files.get(rel)
        if not want:
            continue
        path = index_dir / rel
        if not path.is_file():
            out.append(f"{rel} is missing")
        elif path.stat().st_size != want.get("size"):
            out.append(f"{rel} has {path.stat().st_size} bytes, not the {want.get('size')} written")
        elif want.get("digest"):
            why = digest_problem(index_dir, rel, want)
            if why:
                out.append(why)
    return out


def under(files: dict, prefix: str) -> list[str]:
    return sorted(k for k in files if k.startswith(prefix))
