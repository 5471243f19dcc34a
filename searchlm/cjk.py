"""Chinese, Japanese and Korean text for keyword search: overlapping character bigrams.

SQLite's unicode61 tokenizer splits on spaces and punctuation, so a Chinese or Japanese sentence is one token and a
Korean word carries its particle ("컴퓨터는"): no word inside them can be found. Each run of CJK characters is
therefore also indexed as its overlapping bigrams ("机器学习" -> "机器 器学 学习"), the scheme of Lucene's
CJKAnalyzer, in a second keyword table beside the main one. A query's CJK runs become the same bigrams, OR-ed (BM25
rewards the passages that share most of them) plus the whole run as a phrase (adjacent bigrams: the exact word).
Bigrams find two-character words, which SQLite's trigram tokenizer cannot (it needs three characters), and need no
dictionary per language, unlike jieba (Chinese only). Measured in benchmarks/RESULTS.md ("CJK keyword search").
"""

from __future__ import annotations

import re

# Han (with extensions and compatibility ideographs), kana (with the long-vowel mark and half-width forms),
# Hangul syllables and jamo.
_RANGES = (
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\U00020000-\U0002fa1f"
)
CHARS = _RANGES  # for a character class elsewhere
CHAR = f"[{_RANGES}]"
_RUN = re.compile(f"[{_RANGES}]+")
_ANY = re.compile(f"[{_RANGES}]")
_HIRAGANA = re.compile("^[\u3040-\u309f]+$")


def has_cjk(text: str) -> bool:
    return bool(text) and _ANY.search(text) is not None


def runs(text: str) -> list[str]:
    """The maximal runs of CJK characters in `text`, in order."""
    return _RUN.findall(text)


def bigrams(run: str) -> list[str]:
    """Overlapping bigrams of one run; a one-character run is itself."""
    if len(run) < 2:
        return [run] if run else []
    return [run[i : i + 2] for i in range(len(run) - 1)]


def index_text(text: str) -> str:
    """What the CJK table stores for `text`: each run's bigrams and then its last character alone (so a
    one-character query, run as a prefix, also finds a character that ends a run); "" when there is no CJK."""
    out: list[str] = []
    for run in runs(text):
        out.extend(bigrams(run))
        if len(run) > 1:
            out.append(run[-1])
    return " ".join(out)


def query_grams(text: str) -> tuple[list[str], list[str]]:
    """(terms, phrases) of a query's CJK runs: the distinct bigrams and the runs longer than one bigram.

    Hiragana-only bigrams (Japanese particles and endings: "のは", "ます") are left out of a run that holds
    other characters too; they carry grammar, not topic."""
    terms: list[str] = []
    phrases: list[str] = []
    for run in runs(text):
        grams = bigrams(run)
        content = [g for g in grams if not _HIRAGANA.match(g)] or grams
        terms.extend(content)
        if len(run) > 2:
            phrases.append(run)
    return list(dict.fromkeys(terms)), list(dict.fromkeys(phrases))


def match_query(text: str) -> str:
    """The MATCH string for the CJK table, or "" when `text` has no CJK characters."""
    terms, phrases = query_grams(text)
    parts = [f'"{t}"*' if len(t) == 1 else f'"{t}"' for t in terms]
    parts += ['"' + " ".join(bigrams(p)) + '"' for p in phrases]
    return " OR ".join(parts)


def strip_cjk(text: str) -> str:
    """`text` with its CJK runs replaced by spaces: what the main (word) index is queried with."""
    return _RUN.sub(" ", text)
