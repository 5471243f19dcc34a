"""Short excerpts of a passage around the query terms, for terminal and web output."""

from __future__ import annotations

import re
from itertools import accumulate

from searchlm import cjk
from searchlm.text import query_terms

# A word longer than this is shown cut, with "…": a snippet of 40 words is never a 19 MB line of base64.
MAX_WORD_CHARS = 80


def _matches(word: str, terms: list[str]) -> bool:
    w = word.lower()
    # Prefix match in both directions approximates the keyword index's porter stemming ("attention" ~ "attend").
    return any(w.startswith(t[:5]) if len(t) >= 5 else w == t for t in terms)


def snippet_spans(text: str, query: str, width: int = 40) -> list[tuple[str, bool]]:
    """The best window of about `width` words as (piece, is_match) pairs, with "…" where text was cut."""
    if cjk.has_cjk(text):
        return _cjk_spans(text, query, width)
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
        out.append((_cut(tokens[i]) + ("" if n == len(window) - 1 else " "), flags[i]))
    if best + width < len(tokens):
        out.append((" …", False))
    return out


def _cut(word: str) -> str:
    return word if len(word) <= MAX_WORD_CHARS else word[: MAX_WORD_CHARS - 1] + "…"


def snippet_text(text: str, query: str, width: int = 40, mark: tuple[str, str] = ("[", "]")) -> str:
    return "".join(f"{mark[0]}{p.rstrip()}{mark[1]}{' ' if p.endswith(' ') else ''}" if hit else p
                   for p, hit in snippet_spans(text, query, width))


def _cjk_spans(text: str, query: str, width: int) -> list[tuple[str, bool]]:
    """`snippet_spans` for text with Chinese, Japanese or Korean in it, which has no spaces between words: each
    CJK character is a piece (two count as one word of `width`), and the characters that a query bigram covers
    are marked, in runs ("[熊猫]", not "[熊][猫]"). Words in other scripts are matched as in English."""
    flat = " ".join(text.split())
    terms = [t for t in query_terms(cjk.strip_cjk(query)) if len(t) > 1]
    grams, _ = cjk.query_grams(query)
    marked = bytearray(len(flat))
    for gram in grams:
        at = flat.find(gram)
        while at >= 0:
            marked[at : at + len(gram)] = b"\x01" * len(gram)
            at = flat.find(gram, at + 1)
    pieces: list[tuple[str, str, bool, float]] = []  # (piece, separator after it, is_match, cost in words)
    for m in _PIECE.finditer(flat):
        piece, end = m.group(), m.end()
        sep = " " if end < len(flat) and flat[end] == " " else ""
        if len(piece) == 1 and (cjk.has_cjk(piece) or re.match(f"[{_PUNCT}]", piece)):
            pieces.append((piece, sep, bool(marked[m.start()]), 0.5))
        else:
            pieces.append((piece, sep, bool(terms) and _matches(re.sub(r"\W", "", piece), terms), 1.0))
    if not pieces:
        return []
    costs = [0.0, *accumulate(p[3] for p in pieces)]
    best, best_end, best_score = 0, len(pieces), -1
    for start in range(0, len(pieces), 5):
        end = start
        while end < len(pieces) and costs[end + 1] - costs[start] <= width:
            end += 1
        score = sum(p[2] for p in pieces[start:end])
        if score > best_score:
            best, best_end, best_score = start, end, score
        if end == len(pieces):
            break
    out: list[tuple[str, bool]] = [("… ", False)] if best > 0 else []
    for n, (piece, sep, hit, _) in enumerate(pieces[best:best_end]):
        piece = _cut(piece)
        last = best + n == best_end - 1
        if out and out[-1][1] == hit and not out[-1][0].endswith(" ") and out[-1][0] != "… ":
            out[-1] = (out[-1][0] + piece + ("" if last else sep), hit)
        else:
            out.append((piece + ("" if last else sep), hit))
    if best_end < len(pieces):
        out.append((" …", False))
    return out


# A CJK character, a CJK punctuation mark (ideographic and full-width forms), or a run of anything else.
_PUNCT = "\u3000-\u303f\uff00-\uff65"
_PIECE = re.compile(f"{cjk.CHAR}|[{_PUNCT}]|[^\\s{cjk.CHARS}{_PUNCT}]+")
