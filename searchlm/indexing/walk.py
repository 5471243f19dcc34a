"""Find the files to index under a folder: supported regular files only, honouring .gitignore and .searchlmignore
with git's rules (a nested `!pattern` re-includes what a parent ignores), no symlink loops, and nothing outside
the folder unless asked: a symlink that leads out of it is skipped with a reason, and so is a hard link to a file
that also has names outside it (a link to /etc/passwd made inside the folder is that file, not a copy).

Each file found carries the identity (device, inode) the walk saw, so the reader opens that file and no other: a
file swapped for a symlink, a folder or another file between the walk and the read is skipped (see
`searchlm.extract.read_regular`)."""

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
    dev: int = 0  # the file the walk saw (0, 0: not known), which the reader checks it opened
    ino: int = 0
    via_symlink: bool = False  # reached through a permitted symlink: the read follows it (else O_NOFOLLOW)

    @property
    def identity(self) -> tuple[int, int] | None:
        return (self.dev, self.ino) if self.ino else None


def walk(root: Path, follow_symlinks: bool = False, skipped: list | None = None,
         exclude: tuple[Path, ...] = ()) -> list[FoundFile]:
    """Supported regular files under root, sorted by relative path. What is passed over for a reason the user
    should see (unreadable folders, special files, symlinks or hard links out of the folder, undecodable names)
    is appended to `skipped` as (relative path, reason). Folders in `exclude` (the index home) are passed over
    silently wherever they appear below root, under their own name or another (a symlink, a bind mount): they
    are compared by device and inode.

    `follow_symlinks` also reads symlinks that lead out of the folder and hard links whose other names are
    outside it."""
    root = root.resolve()
    skipped = skipped if skipped is not None else []
    found: list[FoundFile] = []
    seen_dirs: set[tuple[int, int]] = set()
    excluded = {key for key in map(file_identity, exclude) if key is not None}
    links: dict[tuple[int, int], int] = {}  # hard links of each multiply linked file found
    names_seen: dict[tuple[int, int], int] = {}  # and how many of them the walk found here
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
        if key in seen_dirs or (key in excluded and here != root):  # a loop, a second link, the index home
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
            if os.path.exists(full / "pyvenv.cfg"):  # False, not an error, in a folder we may not enter
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
                    lst = os.lstat(full)
                    fst = os.stat(full) if stat.S_ISLNK(lst.st_mode) else lst
                except OSError as exc:
                    reason = "broken symlink" if _is_symlink(full) else f"unreadable ({exc.strerror or exc})"
                else:
                    reason = _not_regular(fst.st_mode)
            if reason:
                skipped.append((_printable(rel), reason))
                continue
            via_symlink = stat.S_ISLNK(lst.st_mode)
            if fst.st_nlink > 1:
                key = (fst.st_dev, fst.st_ino)
                links[key] = fst.st_nlink
                names_seen[key] = names_seen.get(key, 0) + (not via_symlink)
            found.append(FoundFile(full, rel, fst.st_size, fst.st_mtime_ns, fst.st_dev, fst.st_ino, via_symlink))
    if links and not follow_symlinks:
        found = [f for f in found if not _linked_outside(f, links, names_seen, skipped)]
    found.sort(key=lambda f: f.rel)
    return found


def _linked_outside(f: FoundFile, links: dict, names_seen: dict, skipped: list) -> bool:
    """A file with more hard links than the walk found names for has a name outside the folder (or in a part of
    it that is not indexed): it is skipped with a reason, as a symlink out of the folder would be. A link to
    /etc/passwd made inside the folder is /etc/passwd, and a reader of the index should not see it. Counting the
    names costs nothing: the walk stats every file it keeps anyway."""
    key = (f.dev, f.ino)
    total, inside = links.get(key, 1), names_seen.get(key, 0)
    if key not in links or total <= inside:
        return False
    skipped.append((_printable(f.rel), f"hard link to a file with names outside the indexed folder ({total} links, "
                                       f"{inside} found here; pass --follow-symlinks to read it)"))
    return True


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what `path` names, following links; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


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
    if follow_symlinks or not _is_symlink(full):
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
