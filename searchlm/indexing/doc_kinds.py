"""What kind of page a document is: a guide, a changelog, a migration note or an API reference stub.

Manuals ship their change logs and migration notes beside the guides, and those pages mention every feature
(a 2013 changelog entry about pool timeouts matches a pool question as well as the pooling guide does). Knowing the
kind lets a search rank guides first for equal relevance (`PRIOR`) and lets a user keep or drop kinds
(`--kind changelog`, `--exclude-kind changelog,migration`). It is a different thing from a document's *file type*
(`Passage.kind`: md, pdf, py), hence its own name, `doc_kind`, everywhere.

The rules, checked in this order on the path (relative to the indexed folder), the title and the stored chunks
(their heading paths and their paragraphs), first match wins:

1. **migration**: the title says "What's new in" a version ("What's New in SQLAlchemy 2.0?"), starts with
   migrating / upgrading / porting from or to ("Migrating from Flask-Script", "Upgrading to 2.0"), or names a
   migration / upgrade / porting guide or notes ("2.0 - Major Migration Guide"); or the file name says so with a
   version (`migration_20.rst`, `whatsnew_20.rst`, `upgrading-to-3.md`), or the file is in a `whatsnew/` folder.
   A page about schema migrations ("Migrations"), or a paper on cell migration, stays a guide.
2. **changelog**: the file name is CHANGES, CHANGELOG, HISTORY, NEWS, RELEASES or RELEASE-NOTES, alone or with a
   version (`changelog_14.rst`); or a folder on its path is such a name or a changelog-fragment folder
   (`changelog/`, `changes/`, `release-notes/`, `newsfragments/`, `changelog.d/`); or the title says changelog,
   release notes, release/version history, or is just "Changes", "History", "News" or "What's new"; or the page is
   built of version headings: at least 3 of its distinct headings are versions ("Version 2.0.1", "1.4.0
   (2021-03-15)", "[1.0.0] - 2017-06-20", "v2.3") and they are at least a third of them. Release notes are
   changelogs here: both list what changed per version, and a user hiding one means to hide the other.
3. **api**: at least half of the page's paragraphs are bare signatures (a name such as `sqlalchemy.orm.Session`
   or `relationship`, or `name(args)`: what Sphinx autodoc directives leave in the extracted text);
   or a quarter are, and the file name or a folder says api or reference (`api.rst`, `session_api.rst`,
   `reference/`) or the title says "API".
4. **guide**: everything else (tutorials, how-tos, FAQs, prose reference, code).

The kind is computed from what SQLite stores (path, title, chunks), so a fresh index, a re-index and the migration
of an old index all give the same answer (`searchlm.indexing.database` calls `detect` for each document it writes, and for every
stored document when an index from before kinds, or from older rules, is opened for writing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

GUIDE = "guide"
CHANGELOG = "changelog"
MIGRATION = "migration"
API = "api"
DOC_KINDS = (GUIDE, CHANGELOG, MIGRATION, API)
# Bump when the rules below change: opening an index for writing decides its stored documents' kinds again.
RULES_VERSION = 1

# Ranking prior: a hit's fused score is multiplied by its kind's weight (see search.apply_prior). Chosen with
# benchmarks/doc_kinds_bench.py on 17 how-to questions over the SQLAlchemy 2.0 manual (195 pages, 6,992 chunks):
# without it, hit@5 0.94 and 0.24 changelog/migration hits in a top 5; changelog and migration at 0.9 leave 0.06,
# at 0.8 none (0.7 to 0.5 change nothing more, so the mildest is kept: `--kind changelog` still finds them first).
# API stubs at 0.9 or 0.8 pushed the one page whose answer is an API stub (hybrid.rst: its prose is in docstrings)
# from 4th to 6th or out of the top 10; at 0.95 it stays 4th (hit@5 1.00) and a stub still ranks below a guide of equal
# relevance.
PRIOR = {GUIDE: 1.0, CHANGELOG: 0.8, MIGRATION: 0.8, API: 0.95}

_VERSION = r"v?\d+(?:[._]\d+)+[a-z0-9.+-]*"
_MIGRATION_WORDS = r"(?:migrat|upgrad|porting)\w*"
_MIGRATION_TITLE = re.compile(
    rf"what'?s\s+new\s+in\b.*\d|^\W*{_MIGRATION_WORDS}\s+(?:from|to)\b|\b(?:migration|upgrad\w*|porting)\s+(?:guide|notes?)\b",
    re.I,
)
_MIGRATION_STEM = re.compile(rf"(?:{_MIGRATION_WORDS}|whats[-_]?new)[-_ .a-z]*\d", re.I)
_MIGRATION_FOLDERS = {"whatsnew", "whats-new", "whats_new"}

_CHANGELOG_NAMES = r"(?:change[-_]?log|changes|history|news|releases|release[-_]?notes)"
_CHANGELOG_STEM = re.compile(rf"{_CHANGELOG_NAMES}(?:[-_. ]*{_VERSION}|[-_. ]*\d+)?", re.I)
_CHANGELOG_FOLDERS = re.compile(rf"{_CHANGELOG_NAMES}|newsfragments|changelog\.d|changes\.d", re.I)
_CHANGELOG_TITLE = re.compile(
    r"\bchange\s*logs?\b|\brelease\s+notes\b|\b(?:release|version)\s+history\b"
    r"|^\s*(?:changes|history|news|what'?s\s+new)\s*[!?.:]*\s*$",
    re.I,
)
# "Version 2.0.1", "1.4.0 (2021-03-15)", "[1.0.0] - 2017-06-20", "v2.3", "Release 3.1 - unreleased"
_VERSION_HEADING = re.compile(
    rf"\s*(?:(?:version|release)\s+)?\[?{_VERSION}\]?"
    r"(?:\s*[-–—:,]?\s*\(?(?:\d{4}-\d\d-\d\d|\d{1,2}\s+\w+\s+\d{4}|\w+\s+\d{1,2},?\s+\d{4}|\d{4}|unreleased|released\b.*)\)?)?\s*",
    re.I,
)

_API_WORDS = re.compile(r"(?:^|[-_])(?:api|reference)(?:$|[-_])", re.I)
_API_TITLE = re.compile(r"\bAPI\b")
_SIGNATURE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|[A-Za-z_][\w.]*\(.*\)(?:\s*->\s*.+)?")


def detect(path: str, title: str, chunks: Iterable[tuple[str, str]]) -> str:
    """The kind of a document from its stored path, its title and its chunks as (heading path, text) pairs (the
    heading path joined with " > ", the text's paragraphs with blank lines, as `searchlm.indexing.chunking` stores them)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    name = parts[-1] if parts else ""
    stem = name.split(".", 1)[0] if not name.startswith(".") else name
    folders = parts[:-1]
    title = "" if "://" in title else title.strip()  # a text file's first line may be a URL, not a title
    chunks = list(chunks)

    if (_MIGRATION_TITLE.search(title) or _MIGRATION_STEM.fullmatch(stem)
            or any(f.lower() in _MIGRATION_FOLDERS for f in folders)):
        return MIGRATION
    if (_CHANGELOG_STEM.fullmatch(stem) or any(_CHANGELOG_FOLDERS.fullmatch(f) for f in folders)
            or _CHANGELOG_TITLE.search(title) or _version_headed(h for h, _ in chunks)):
        return CHANGELOG
    share = _signature_share(text for _, text in chunks)
    hinted = bool(_API_WORDS.search(stem) or any(_API_WORDS.search(f) for f in folders) or _API_TITLE.search(title))
    # An autodoc-only page (`.. autoclass::` and nothing else) is read as its title alone: its prose lives in
    # docstrings the folder does not hold.
    title_only = bool(chunks) and all(text.strip() in ("", title.strip()) for _, text in chunks)
    if share >= 0.5 or (hinted and (share >= 0.25 or title_only)):
        return API
    return GUIDE


def _version_headed(headings: Iterable[str]) -> bool:
    distinct = {seg.strip() for h in headings for seg in h.split(" > ") if seg.strip()}
    versions = sum(1 for seg in distinct if _VERSION_HEADING.fullmatch(seg))
    return versions >= 3 and versions * 3 >= len(distinct)


def _signature_share(texts: Iterable[str]) -> float:
    paragraphs = [p.strip() for t in texts for p in t.split("\n\n") if p.strip()]
    if not paragraphs:
        return 0.0
    return sum(1 for p in paragraphs if len(p) < 200 and "\n" not in p and _SIGNATURE.fullmatch(p)) / len(paragraphs)


def split_kinds(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """Kinds as a user gives them (repeated, or comma-separated): split, stripped, lower-cased, each once; not
    checked (`parse_kinds` checks)."""
    if isinstance(values, str):
        values = (values,)
    return tuple(dict.fromkeys(k.strip().lower() for v in values or () for k in v.split(",") if k.strip()))


def parse_kinds(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """Kinds as a user gives them (repeated, or comma-separated), checked: an unknown one is an InputError."""
    from searchlm.errors import InputError

    kinds = split_kinds(values)
    unknown = next((kind for kind in kinds if kind not in DOC_KINDS), None)
    if unknown is not None:
        raise InputError(f"document kind '{unknown}' is not one searchlm knows", f"use {', '.join(DOC_KINDS)}")
    return kinds
