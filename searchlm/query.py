"""User text to a safe FTS5 query: words only, each quoted, OR-ed; operators and punctuation never reach FTS5."""

from __future__ import annotations

from searchlm.text import query_terms


def fts_query(text: str) -> str:
    return " OR ".join(f'"{w}"' for w in query_terms(text))


def keyword_text(text: str) -> str:
    """The words `fts_query` searches for, space-separated, for an engine that runs its own analyzer (Milvus)."""
    return " ".join(query_terms(text))
