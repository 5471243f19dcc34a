"""Find the files to index under a folder: supported regular files only, honouring .gitignore and .searchlmignore
with git's rules (a nested `!pattern` re-includes what a parent ignores), no symlink loops, and nothing outside
the folder unless asked: a symlink that leads out of it is skipped with a reason."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from searchlm.extract import kind_of

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages", "venv", "env", ".venv",
             ".tox", ".nox", ".mypy_cache", ".pytest_cache", "dist", "build"}
IGNORE_FILES = (".gitignore", ".searchlmignore")
_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


@dataclass
class FoundFile:
    path: Path  # absolute
    rel: str  # POSIX path relative to the indexed root: the document's identity
    size: int
    mtime_ns: int


def walk(root: Path, follow_symlinks: bool = False, skipped: list | None = None) -> list[FoundFile]:
    """Supported regular files under root, sorted by relative path. What is passed over for a reason the user
    should see (unreadable folders, special files, symlinks out of the folder, undecodable names) is appended to
    `skipped` as (relative path, reason)."""
    root = root.resolve()
    skipped = skipped if skipped is not None else []
    found: list[FoundFile] = []
    seen_dirs: set[tuple[int, int]] = set()
    ignores: list[tuple[str, object]] = []  # (dir rel path, compiled spec), parents before children

    def unreadable(exc: OSError) -> None:
        rel = _rel(Path(exc.filename), root) if exc.filename else "."
        skipped.append((rel, f"unreadable folder ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        here = Path(dirpath)
        try:
            st = here.stat()
        except OSError as exc:
            unreadable(exc)
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # a symlink loop or a second link to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        rel_dir = _rel(here, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        spec = _load_gitignore(here)
        if spec is not None:
            ignores.append((rel_dir, spec))

        kept = []
        for d in sorted(dirnames):
            full = here / d
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d.startswith(".") or d in SKIP_DIRS or _ignored(ignores, rel, True):
                continue
            reason = _name_problem(rel) or _link_problem(full, root, follow_symlinks)
            if reason:
                skipped.append((_printable(rel), reason))
                continue
            if (full / "pyvenv.cfg").exists():
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = here / name
            if kind_of(full) is None:
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if _ignored(ignores, rel, False):
                continue
            reason = _name_problem(rel) or _link_problem(full, root, follow_symlinks)
            if reason is None:
                try:
                    fst = full.stat()
                except OSError as exc:
                    reason = "broken symlink" if full.is_symlink() else f"unreadable ({exc.strerror or exc})"
                else:
                    reason = _not_regular(fst.st_mode)
            if reason:
                skipped.append((_printable(rel), reason))
                continue
            found.append(FoundFile(full, rel, fst.st_size, fst.st_mtime_ns))
    found.sort(key=lambda f: f.rel)
    return found


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _ignored(ignores: list, rel: str, is_dir: bool) -> bool:
    """git's rule: every .gitignore on the way down is consulted, and the deepest one that matches decides, so
    a nested `!keep.md` re-includes a file that a parent's `*.md` ignores."""
    decision = False
    for base, spec in ignores:
        if base and not rel.startswith(base + "/"):
            continue
        sub = rel[len(base) + 1 :] if base else rel
        result = spec.check_file(sub + ("/" if is_dir else ""))
        if result.include is None and is_dir:
            result = spec.check_file(sub)
        if result.include is not None:
            decision = result.include
    return decision


def _name_problem(rel: str) -> str | None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename it, e.g. with `convmv`)"
    return None


def _printable(rel: str) -> str:
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _link_problem(full: Path, root: Path, follow_symlinks: bool) -> str | None:
    """A symlink may lead anywhere; by default only targets inside the indexed folder are read."""
    if follow_symlinks or not full.is_symlink():
        return None
    target = Path(os.path.realpath(full))
    if target == root or target.is_relative_to(root):
        return None
    return "symlink to outside the indexed folder (pass --follow-symlinks to read it)"


def _not_regular(mode: int) -> str | None:
    for test, what in _SPECIAL:
        if test(mode):
            return f"not a regular file ({what})"
    return None if stat.S_ISREG(mode) else "not a regular file"


def _load_gitignore(folder: Path):
    """Patterns from .gitignore and .searchlmignore (same syntax; the second hides files from searchlm only)."""
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            lines += (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    if not lines:
        return None
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(lines)
