"""Find the files to index under a folder: supported types only, honouring .gitignore and .searchlmignore,
no symlink loops."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from searchlm.extract import kind_of

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages", "venv", "env", ".venv",
             ".tox", ".nox", ".mypy_cache", ".pytest_cache", "dist", "build"}


@dataclass
class FoundFile:
    path: Path  # absolute
    rel: str  # POSIX path relative to the indexed root: the document's identity
    size: int
    mtime_ns: int


def walk(root: Path) -> list[FoundFile]:
    """Supported files under root, sorted by relative path."""
    root = root.resolve()
    found: list[FoundFile] = []
    seen_dirs: set[tuple[int, int]] = set()
    ignores: dict[str, object] = {}  # dir rel path -> compiled .gitignore spec

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        st = here.stat()
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # a symlink loop or a second link to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        rel_dir = here.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        spec = _load_gitignore(here)
        if spec is not None:
            ignores[rel_dir] = spec

        def ignored(rel: str, is_dir: bool) -> bool:
            for base, sp in ignores.items():
                if base and not rel.startswith(base + "/"):
                    continue
                sub = rel[len(base) + 1 :] if base else rel
                if sp.match_file(sub + ("/" if is_dir else "")):
                    return True
            return False

        kept = []
        for d in sorted(dirnames):
            full = here / d
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d.startswith(".") or d in SKIP_DIRS or (full / "pyvenv.cfg").exists() or ignored(rel, True):
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
            if ignored(rel, False):
                continue
            try:
                fst = full.stat()
            except OSError:
                continue  # a dangling symlink
            found.append(FoundFile(full, rel, fst.st_size, fst.st_mtime_ns))
    found.sort(key=lambda f: f.rel)
    return found


IGNORE_FILES = (".gitignore", ".searchlmignore")


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
    import pathspec

    style = "gitignore" if "gitignore" in getattr(pathspec.util, "_registered_patterns", {}) else "gitwildmatch"
    return pathspec.PathSpec.from_lines(style, lines)
