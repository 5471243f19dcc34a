"""Short excerpts of a passage around the query terms, for terminal and web output."""

from __future__ import annotations

import re

from searchlm.text import query_terms


def _matches(word: str, terms: list[str]) -> bool:
    w = word.lower()
    # Prefix match in both directions approximates FTS5's porter stemming ("attention" ~ "attend").
    return any(w.startswith(t[:5]) if len(t) >= 5 else w == t for t in terms)


def snippet_spans(text: str, query: str, width: int = 40) -> list[tuple[str, bool]]:
    """The best window of about `width` words as (piece, is_match) pairs, with "…" where text was cut."""
    terms = [t for t in query_terms(query) if len(t) > 1]
    words = re.split(r"(\s+)", " ".join(text.split()))
    tokens = [w for w in words if w and not w.isspace()]
    if not tokens:
        return []
    flags = [bool(terms) and _matches(re.sub(r"\W", "", t), terms) for t in tokens]
    best, best_score = 0, -1
    for start in range(0, max(1, len(tokens) - width + 1), 5):
        score = sum(flags[start : start + width])
        if score > best_score:
            best, best_score = start, score
    window = range(best, min(len(tokens), best + width))
    out: list[tuple[str, bool]] = []
    if best > 0:
        out.append(("… ", False))
    for n, i in enumerate(window):
        out.append((tokens[i] + ("" if n == len(window) - 1 else " "), flags[i]))
    if best + width < len(tokens):
        out.append((" …", False))
    return out


def snippet_text(text: str, query: str, width: int = 40, mark: tuple[str, str] = ("[", "]")) -> str:
    return "".join(f"{mark[0]}{p.rstrip()}{mark[1]}{' ' if p.endswith(' ') else ''}" if hit else p
                   for p, hit in snippet_spans(text, query, width))
