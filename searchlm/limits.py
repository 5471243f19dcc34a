"""The bounds on what a surface (the CLI, the HTTP server, the MCP tools) takes in, checked in one place.

A query or question is at most MAX_QUERY_CHARS characters: the query encoder reads only its first 256 tokens
(~1,000 characters of English) anyway, and a 7-million-character query once held the MCP server for over 15
minutes in tokenizing and spelling correction. The check runs before anything else, so a 10 MB query is
refused at once and the next call is answered normally. The library itself takes longer queries (an
evaluation's queries are the dataset's own); the surfaces are where text arrives from others.

A document or chunk id is a SQLite INTEGER PRIMARY KEY: 1 to 2**63 - 1. A larger one is no row, but Python's
sqlite3 would raise OverflowError on it instead of finding nothing.
"""

from __future__ import annotations

from searchlm.errors import InputError

MAX_QUERY_CHARS = 1000
SQLITE_MAX_ID = 2**63 - 1
MAX_ANSWER_TOKENS = 1024  # the longest answer a surface asks for (the library checks k, answer.MAX_K)


def check_query(text: str, what: str = "query") -> str:
    """`text` unchanged, or an InputError when it is over MAX_QUERY_CHARS (the message does not repeat it)."""
    if isinstance(text, str) and len(text) > MAX_QUERY_CHARS:
        raise InputError(f"the {what} is {len(text):,} characters, over the limit of {MAX_QUERY_CHARS:,}",
                         f"shorten the {what}")
    return text


def check_answer_tokens(max_tokens: int) -> int:
    """`max_tokens` unchanged, or an InputError when it is over MAX_ANSWER_TOKENS: a model asked for a billion
    tokens writes until its window is full, holding the one answer slot of a server."""
    if max_tokens > MAX_ANSWER_TOKENS:
        raise InputError(f"max_tokens {max_tokens} is over the limit of {MAX_ANSWER_TOKENS}",
                         f"use max_tokens={MAX_ANSWER_TOKENS} or less", f"use --max-tokens {MAX_ANSWER_TOKENS} or less")
    return max_tokens


def check_id(value, what: str = "doc_id") -> int:
    """`value` as an id, or an InputError when it is not a whole number from 1 to 2**63 - 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SQLITE_MAX_ID:
        shown = str(value) if isinstance(value, int) else repr(value)
        raise InputError(f"{what} {shown[:40]} is not an id (ids are whole numbers from 1 to {SQLITE_MAX_ID})",
                         f"use the {what} of a search hit")
    return value
