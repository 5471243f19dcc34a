"""A real (non-synthetic) corpus of public text available offline, written as files for `searchlm index`
(issue #23: HNSW recall on a real index of >= 50k chunks): the BEIR corpora in /work/shared/datasets (one
Markdown file per document, as `searchlm eval` writes them), the CPython standard library's .py files (tests
left out), the .rst/.md/.txt files of the installed packages (licences, vocabularies and files over 200 KB
left out), then their .py files up to the budget, in that order of folder names so that a run stopped early holds the first parts whole.

    python benchmarks/real_corpus.py OUT [--stdlib DIR] [--site DIR] [--max-mb 30]
    nice -n 10 searchlm index OUT --name real --home HOME

Prints the files and megabytes written per part. Rerunning leaves unchanged files alone.
"""

from __future__ import annotations

import argparse
import shutil
import sysconfig
from pathlib import Path

DATASETS = Path("/work/shared/datasets")
SKIP_NAMES = ("license", "licence", "copying", "notice", "thirdparty", "vocab", "authors", "record", "entry_points",
              "top_level", "requirements", "sources")
SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", "test", "tests", "idle_test", "node_modules"}


def copy_tree(src: Path, dst: Path, suffixes: tuple[str, ...], budget: int, max_file: int = 200_000) -> tuple[int, int]:
    """Copy the files under `src` ending in `suffixes` (sorted by path) until `budget` bytes; (files, bytes)."""
    files = written = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.suffix not in suffixes or not path.is_file() or path.is_symlink():
            continue
        if any(part in SKIP_DIRS or part.endswith((".dist-info", ".egg-info")) for part in rel.parts[:-1]):
            continue
        if any(word in path.name.lower() for word in SKIP_NAMES):
            continue
        size = path.stat().st_size
        if size == 0 or size > max_file:
            continue
        if written + size > budget:
            break
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if not (out.is_file() and out.stat().st_size == size):
            shutil.copyfile(path, out)
        files += 1
        written += size
    return files, written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    ap.add_argument("--site", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    ap.add_argument("--max-mb", type=float, default=30.0, help="text written at most, BEIR included")
    args = ap.parse_args()
    from searchlm.evaluate import _write_corpus, load_beir

    budget = int(args.max_mb * 1e6)
    total = 0
    for name in ("scifact", "cranfield", "cisi", "xquad_en"):
        folder = args.out / "a-beir" / name
        _write_corpus(load_beir(DATASETS / name, "test"), folder)
        size = sum(p.stat().st_size for p in folder.iterdir())
        total += size
        print(f"beir/{name}: {len(list(folder.iterdir()))} files, {size / 1e6:.1f} MB")
    for part, src, suffixes in (("b-stdlib", args.stdlib, (".py",)),
                                ("c-site-docs", args.site, (".rst", ".md", ".txt")),
                                ("d-site-py", args.site, (".py",))):
        files, size = copy_tree(src, args.out / part, suffixes, budget - total)
        total += size
        print(f"{part} ({src}): {files} files, {size / 1e6:.1f} MB")
    print(f"total {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
