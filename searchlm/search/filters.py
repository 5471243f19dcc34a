"""Search filters as SQL over `documents d`: paths as users type them, types, kinds, dates; and why a search came
back empty.

A `--path` or `--exclude` value may be what a hit shows (an absolute path, or one relative to the current folder),
a path relative to the indexed folder, a folder with or without a trailing slash, or a glob (`*` crosses
folders, as SQLite GLOB does). Every form becomes a condition on the stored path, which is relative to the
indexed folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from searchlm.errors import InputError
from searchlm.extract import file_kind

_GLOB_CHARS = set("*?[")


@dataclass
class Filter:
    """One filter as the user gave it (`--path 'docs/*'`) and its SQL condition on `documents d`."""

    label: str
    sql: str
    params: list


def path_condition(value: str, root: str, cwd: Path | None = None) -> tuple[str, list]:
    """SQL matching documents whose stored path (relative to `root`) is `value` in any of the forms above."""
    value = value.strip()
    if not value:
        raise InputError("the path filter is empty", "give a folder or glob, e.g. path='docs/*'",
                         "give a folder or glob, e.g. --path 'docs/*'")
    candidates = []
    for form in _relative_forms(value, Path(root), cwd or Path.cwd()):
        if form not in candidates:
            candidates.append(form)
    if not candidates:
        raise InputError(f"path '{value}' is outside the indexed folder {root} (give a path inside it, or a glob)")
    parts, params = [], []
    for form in candidates:
        if any(c in _GLOB_CHARS for c in form):
            parts.append("d.path GLOB ?")
            params.append(form + "*" if form.endswith("/") else form)
        elif form in ("", "."):
            parts.append("1")
        else:  # a file, or a folder and everything under it
            form = form.rstrip("/")
            parts.append("(d.path = ? OR substr(d.path, 1, ?) = ?)")
            params.extend([form, len(form) + 1, form + "/"])
    return "(" + " OR ".join(parts) + ")", params


def _relative_forms(value: str, root: Path, cwd: Path) -> list[str]:
    """`value` as a path relative to the indexed folder: as given, and as a path from `cwd` or an absolute one."""
    trailing = "/" if value.endswith(("/", os.sep)) and value.strip("/") else ""
    head, glob_tail = _split_glob(value)
    forms = []
    expanded = Path(os.path.expanduser(head)) if head else None
    if expanded is None or not expanded.is_absolute():
        forms.append(value.replace(os.sep, "/").removeprefix("./"))
    for base in ([expanded] if expanded is not None and expanded.is_absolute() else [cwd / head] if head else []):
        try:
            rel = Path(os.path.normpath(base)).relative_to(Path(os.path.normpath(root)))
        except ValueError:
            try:
                rel = base.resolve().relative_to(root.resolve())
            except (ValueError, OSError):
                continue
        rel_text = "" if str(rel) == "." else rel.as_posix()
        if glob_tail:
            forms.append(f"{rel_text}/{glob_tail}" if rel_text else glob_tail)
        else:
            forms.append(rel_text + (trailing if rel_text else ""))
    return forms


def _split_glob(value: str) -> tuple[str, str]:
    """('folder/part', 'glob/tail'): the path up to the first segment holding a glob character, and the rest."""
    segments = value.replace(os.sep, "/").split("/")
    for n, seg in enumerate(segments):
        if any(c in _GLOB_CHARS for c in seg):
            return "/".join(segments[:n]), "/".join(segments[n:])
    return value.rstrip("/"), ""


def build_filters(path: str | None, exclude: tuple[str, ...], types: tuple[str, ...], since: str | None,
                  root: str, doc_kinds: tuple[str, ...] = (), exclude_doc_kinds: tuple[str, ...] = ()) -> list[Filter]:
    """The filters of a search; `doc_kinds` keeps only documents of those kinds (`searchlm.indexing.doc_kinds`),
    `exclude_doc_kinds` leaves those kinds out."""
    from searchlm.indexing.doc_kinds import parse_kinds

    out: list[Filter] = []
    if path:
        sql, params = path_condition(path, root)
        out.append(Filter(f"--path '{path}'", sql, params))
    for pattern in exclude:
        if pattern.strip():
            sql, params = path_condition(pattern, root)
            out.append(Filter(f"--exclude '{pattern}'", f"NOT {sql}", params))
    kinds = [t.strip() for t in types if t.strip()]
    if kinds:
        out.append(Filter(f"--type {','.join(kinds)}", f"d.kind IN ({','.join('?' * len(kinds))})",
                          [file_kind(t) for t in kinds]))
    if since:
        out.append(Filter(f"--since {since}", "d.mtime_ns >= ?", [since_ns(since)]))
    keep, drop = parse_kinds(doc_kinds), parse_kinds(exclude_doc_kinds)
    if keep:
        out.append(Filter(f"--kind {','.join(keep)}", f"d.doc_kind IN ({','.join('?' * len(keep))})", list(keep)))
    if drop:
        out.append(Filter(f"--exclude-kind {','.join(drop)}", f"d.doc_kind NOT IN ({','.join('?' * len(drop))})",
                          list(drop)))
    return out


def since_ns(since: str) -> int:
    """A YYYY-MM-DD date as the nanosecond mtime documents are compared with."""
    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        raise InputError(f"date '{since}' is not a date", "use YYYY-MM-DD, e.g. 2024-01-31",
                         "use YYYY-MM-DD, e.g. --since 2024-01-31") from None
    if not 1900 <= when.year <= 2200:  # nanoseconds past 2262 overflow SQLite's 64-bit integers
        raise InputError(f"date '{since}' is out of range (use a year from 1900 to 2200)")
    return int(when.timestamp() * 1e9)


def why_empty(store, filters: list[Filter], doc_ids: list[int]) -> str:
    """Which filters removed the hits the same search finds without filters (`doc_ids`, in rank order): a
    sentence such as "--path 'orm/' removed all 10 hits (it matches no indexed document)"."""
    if not filters:
        return ""
    parts = []
    unique = list(dict.fromkeys(doc_ids))
    conn = store.conn  # once: a search replica's is a copy it may first ask the server about
    for f in filters:
        marks = ",".join("?" * len(unique))
        kept = {r[0] for r in conn.execute(
            f"SELECT d.id FROM documents d WHERE d.id IN ({marks}) AND {f.sql}", [*unique, *f.params])} if unique else set()
        removed = sum(1 for d in doc_ids if d not in kept)
        matching = conn.execute(f"SELECT count(*) FROM documents d WHERE {f.sql}", f.params).fetchone()[0]
        what = f"removed {removed} of {len(doc_ids)} hits" if removed < len(doc_ids) else f"removed all {len(doc_ids)} hits"
        if matching == 0:
            what += " (it matches no indexed document"
            if f.label.startswith("--path"):
                sample = conn.execute("SELECT path FROM documents ORDER BY id LIMIT 1").fetchone()
                what += f"; stored paths look like '{sample[0]}'" if sample else ""
            what += ")"
        parts.append(f"{f.label} {what}")
    return "; ".join(parts)
