"""User text to a safe query for SQLite's keyword tables: words only, each quoted, OR-ed; operators and punctuation
never reach SQLite's MATCH."""

from __future__ import annotations

from searchlm.cjk import match_query, strip_cjk
from searchlm.text import query_terms


def fts_query(text: str) -> str:
    """The MATCH string for the word table; Chinese, Japanese and Korean text goes to `cjk_query` instead."""
    return " OR ".join(f'"{w}"' for w in query_terms(strip_cjk(text)))


def cjk_query(text: str) -> str:
    """The MATCH string for the CJK bigram table ("" for a query without CJK characters)."""
    return match_query(text)


def keyword_text(text: str) -> str:
    """The words `fts_query` searches for, space-separated, for an engine that runs its own analyzer."""
    return " ".join(query_terms(text))
