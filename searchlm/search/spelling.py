"""Typo tolerance: a query word the index has never seen is corrected against the index's own vocabulary.

Everything comes from SQLite's keyword tables: whether a word occurs (a MATCH on the index), the vocabulary with
document counts (a vocabulary table over the index), and the stems (a temporary keyword table with the index's own porter
tokenizer stems the query words exactly as the index stemmed its text). rapidfuzz finds the vocabulary stems
within a small Damerau-Levenshtein distance (a swap of two letters is one edit) of the misspelled word's stem; the
most frequent of the nearest wins, and is shown as a word of the indexed text, not as a stem. A word that occurs
in the index is never corrected, nor are numbers and words shorter than four letters.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from searchlm.text import STOPWORDS

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_TOKENIZE = "porter unicode61 remove_diacritics 2"  # the index's own (indexing/database.py)
MIN_LENGTH = 4


@dataclass
class Correction:
    """The query as searched (`corrected`) and the words that were replaced (`changes`: typed -> used)."""

    original: str
    corrected: str
    changes: dict[str, str] = field(default_factory=dict)


@dataclass
class Lexicon:
    """What `correct_query` reads from one index at one generation and may keep between queries (a server):
    which words occur, and the vocabulary with document counts (a scan of the whole vocabulary)."""

    occurs: dict[str, bool] = field(default_factory=dict)
    terms: list[str] | None = None
    docs: dict[str, int] | None = None
    nearest: dict[str, str | None] = field(default_factory=dict)  # unknown word -> its correction (None: none)


def correct_query(conn: sqlite3.Connection, query: str, lexicon: Lexicon | None = None) -> Correction | None:
    """The query with each word unknown to the index replaced by its nearest indexed word, or None when every
    word is known (or nothing close enough exists). `lexicon` keeps what was read for the next query; it must
    be dropped when the index changes."""
    lexicon = lexicon or Lexicon()
    words = [m.group(0) for m in _WORD.finditer(query)]
    unknown = [
        w for w in dict.fromkeys(words)
        if len(w) >= MIN_LENGTH and not any(c.isdigit() for c in w) and w.lower() not in STOPWORDS
        and not _occurs(conn, w, lexicon)
    ]
    if not unknown:
        return None
    new = [w for w in unknown if w not in lexicon.nearest]
    if new:
        _nearest(conn, new, lexicon)
    changes = {w: lexicon.nearest[w] for w in unknown if lexicon.nearest[w]}
    if not changes:
        return None
    corrected = _WORD.sub(lambda m: changes.get(m.group(0), m.group(0)), query)
    return Correction(query, corrected, changes)


def _nearest(conn: sqlite3.Connection, words: list[str], lexicon: Lexicon) -> None:
    """Find and keep in `lexicon.nearest` the correction of each of `words` (unknown to the index), or None."""
    _ensure_tables(conn)
    stems = _stems(conn, words)
    if lexicon.terms is None:
        vocab = conn.execute("SELECT term, doc FROM temp.searchlm_vocab").fetchall()
        lexicon.terms, lexicon.docs = [t for t, _ in vocab], dict(vocab)
    terms, docs = lexicon.terms, lexicon.docs
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    if len(lexicon.nearest) > 100_000:
        lexicon.nearest.clear()
    for word in words:
        stem = stems.get(word.lower(), word.lower())
        limit = 1 if len(stem) <= 5 else 2
        near = process.extract(stem, terms, scorer=DamerauLevenshtein.distance, score_cutoff=limit, limit=50)
        best = min(near, key=lambda m: (m[1], m[0][:1] != stem[:1], -docs[m[0]]))[0] if near else None
        lexicon.nearest[word] = _surface(conn, best, word.lower()) if best else None


def _occurs(conn: sqlite3.Connection, word: str, lexicon: Lexicon) -> bool:
    found = lexicon.occurs.get(word)
    if found is None:
        query = '"' + word.replace('"', '""') + '"'
        found = conn.execute("SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", [query]).fetchone() is not None
        if len(lexicon.occurs) > 100_000:
            lexicon.occurs.clear()
        lexicon.occurs[word] = found
    return found


def _ensure_tables(conn: sqlite3.Connection) -> None:
    """Temporary tables on this connection only: the index file is never written."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.searchlm_vocab USING fts5vocab(main, chunks_fts, row)")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.searchlm_where USING fts5vocab(main, chunks_fts, instance)")
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.searchlm_stem USING fts5(w, tokenize='{_TOKENIZE}')")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.searchlm_stems USING fts5vocab(temp, searchlm_stem, instance)")


def _stems(conn: sqlite3.Connection, words: list[str]) -> dict[str, str]:
    """word (lower case) -> the stem the index's tokenizer makes of it."""
    conn.execute("DELETE FROM temp.searchlm_stem")
    rowids = {}
    for w in words:
        rowids[conn.execute("INSERT INTO temp.searchlm_stem(w) VALUES (?)", [w]).lastrowid] = w.lower()
    out = {rowids[doc]: term for term, doc in conn.execute("SELECT term, doc FROM temp.searchlm_stems") if doc in rowids}
    conn.execute("DELETE FROM temp.searchlm_stem")
    return out


def _surface(conn: sqlite3.Connection, stem: str, typed: str) -> str | None:
    """A word of the indexed text that the tokenizer stems to `stem`: among a few occurrences, the nearest to what
    was typed ("paramtrize" -> "parametrize", not "parametrization"), then the commonest."""
    from rapidfuzz.distance import DamerauLevenshtein

    found: dict[str, int] = {}
    rows = conn.execute(
        "SELECT doc, col, \"offset\" FROM temp.searchlm_where WHERE term = ? LIMIT 20", [stem]
    ).fetchall()
    for rowid, col, offset in rows:
        if col not in ("title", "heading", "text"):
            continue
        row = conn.execute(f"SELECT {col} FROM chunks WHERE id = ?", [rowid]).fetchone()
        tokens = _WORD.findall(row[0]) if row else []
        if offset < len(tokens):
            word = tokens[offset].lower()
            found[word] = found.get(word, 0) + 1
    return min(found, key=lambda w: (DamerauLevenshtein.distance(w, typed), -found[w])) if found else None
