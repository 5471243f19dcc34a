"""Plain-text helpers shared by keyword search, snippets, answers, summaries and the LM reranker: words,
stopwords, a light stemmer, sentences and citation markers. One home, so that what "a word" is cannot drift
between the parts that must agree on it (the question's words and the passage words an answer is checked on).
"""

from __future__ import annotations

import functools
import re

WORD = re.compile(r"\w+", re.UNICODE)  # what keyword search and highlighting take as a word
LETTERS = re.compile(r"[^\W_]+", re.UNICODE)  # a word without underscores, for answer and citation checks
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")  # a sentence ends before a capital, digit or quote
CITATION = re.compile(r"\[\d+\]")  # a checked citation marker, `[3]`
_RULE = re.compile(r"^\s*([=\-~*_#+])\1{2,}\s*$")
LIST_MARK = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s+")  # a list item's bullet or number
_ITEM = re.compile(LIST_MARK.pattern + r"\S")

# English function words: what keyword search leaves out of a query (unless nothing else is left).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves
    don doesn didn isn aren wasn weren hasn haven hadn won wouldn shouldn couldn mustn t s d ll m re ve""".split()
)  # the last line: what is left of "doesn't", "it's", "you'll" once split at the apostrophe
# Words a question or an answer uses without saying what it is about ("what is the name of the kind of ...").
# Left out, with the stopwords, when answers and summaries are checked against passages; keyword search keeps them.
GENERIC_WORDS = frozenset(
    """also call called get kind made make many may might much name named often one per shall two type typically
    use used usually way whose""".split()
)


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix strip, so "points" matches "point", "values" "value", "classes" "class" and "trained" "train"
    (the keyword index does its own Porter). A plural loses "es" only after a hiss ("matches", "boxes"): stripping "es" from
    every word made "values" "valu" and "files" "fil", which matched neither "value" nor "file".
    Cached: every hit of every search stems its passage's words."""
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            if suffix == "es" and not word[:-2].endswith(("ss", "sh", "ch", "x", "z")):
                continue  # "values": the plain "s" below
            if suffix == "s" and word.endswith("ss"):
                return word  # "class", "process"
            return word[: -len(suffix)]
    return word


def porter_terms(text: str) -> list[str]:
    """Words as SQLite's `porter unicode61 remove_diacritics 2` tokenizer indexes them: letters and digits
    (an underscore separates), diacritics removed, lower-cased, Porter-stemmed. For a keyword engine that cannot
    stem itself, so that its BM25 sees the terms SQLite's keyword tables see."""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return _porter().stemWords(LETTERS.findall(plain))


@functools.cache
def _porter():
    import snowballstemmer  # the original Porter algorithm, as SQLite's porter tokenizer

    return snowballstemmer.stemmer("porter")


def words(text: str) -> list[str]:
    """Lower-cased, stemmed words."""
    return [stem(w) for w in LETTERS.findall(text.lower())]


def word_set(text: str) -> set[str]:
    """`set(words(text))`, stemming each distinct word once."""
    return {stem(w) for w in set(LETTERS.findall(text.lower()))}


_GENERIC_STEMS = GENERIC_WORDS | {stem(w) for w in GENERIC_WORDS}  # "typically" is "typical" once stemmed


def content_words(text: str) -> list[str]:
    """The stemmed words that say what a text is about, each once, in order."""
    return [w for w in dict.fromkeys(words(text)) if w not in STOPWORDS and w not in _GENERIC_STEMS]


def query_terms(text: str) -> list[str]:
    """A query's words as keyword search takes them: lower-cased, unstemmed, each once, stopwords left out
    unless nothing else is left."""
    found = [w.lower() for w in WORD.findall(text)]
    kept = [w for w in found if w not in STOPWORDS] or found
    return list(dict.fromkeys(kept))


def sentences(text: str) -> list[str]:
    """Sentences with their line breaks and runs of spaces made single spaces. A blank line, a rule line
    (`=====`, `-----`) and a list item end a sentence too, and rules are dropped: a plain-text title block or
    a price list is not one long "sentence" that runs into the next paragraph. A full stop after an
    abbreviation ("e.g.", "Fig."), an initial, or inside inline code or brackets that are still
    open does not end one (`_continues`)."""
    parts, current = [], []
    for line in text.strip().split("\n"):
        if not line.strip() or _RULE.match(line) or (_ITEM.match(line) and current):
            parts.append(" ".join(current))
            current = []
        if line.strip() and not _RULE.match(line):
            current.append(line)
    parts.append(" ".join(current))
    out: list[str] = []
    for part in parts:
        joined: list[str] = []
        for piece in SENTENCE_END.split(part.strip()):
            if not piece.strip():
                continue
            if joined and _continues(joined[-1]):
                joined[-1] = f"{joined[-1]} {piece}"
            else:
                joined.append(piece)
        out.extend(" ".join(s.split()) for s in joined)
    return out


# Words whose full stop is not a sentence's end, lower-cased, without their last dot.
_ABBREVIATIONS = frozenset(
    "e.g i.e cf vs fig figs no nos approx dr mr mrs ms prof st jr sr inc ltd al eq eqs ref refs sec ch vol pp p ca "
    "resp viz esp".split()
)
MAX_JOINED = 600  # characters: past this, a split is taken as it comes (a runaway bracket must not swallow text)


def _continues(sentence: str) -> bool:
    """Whether a split after `sentence` fell inside it: after an abbreviation or an initial, or with inline code
    or a bracket still open. (A dotted name that ends a sentence, "depending on Flask.debug.", does end it: the
    split needs a space after the dot, which a name such as `logging.INFO` never has.)"""
    if len(sentence) > MAX_JOINED or not sentence.endswith("."):
        return False
    last = sentence.rsplit(None, 1)[-1].lstrip("(\"'[`")
    word = last[:-1].lower()
    if word in _ABBREVIATIONS or (len(word) == 1 and last[:-1].isupper()):  # "J. Smith", not "100 g. We"
        return True
    return sentence.count("`") % 2 == 1 or sentence.count("(") > sentence.count(")") \
        or sentence.count("[") > sentence.count("]")


_CODE_LINE = re.compile(
    r"^\s*(?:>>>|\.\.\.\s|\$\s|#!|//|@\w|def\s|class\s\w+[(:]|import\s|from\s\S+\simport|return\b|raise\b|"
    r"(?:if|for|while|with|elif|try|except|else|finally)\b.*:$|[\w.\[\]'\"]+\s*[-+*/|]?=[^=]|\w+(?:\.\w+)*\(.*\)[;,]?$|"
    r"[{}\])]+[;,]?$|<[/!]?\w)"
    r"|[;{]\s*$"
)


def is_code(paragraph: str) -> bool:
    """Whether a paragraph of a passage is code (a literal block as extraction kept it, or a code file's text)
    rather than prose: most of its lines look like code and few read as sentences."""
    lines = [ln for ln in paragraph.splitlines() if ln.strip()]
    if not lines:
        return False
    code = sum(bool(_CODE_LINE.search(ln)) for ln in lines)
    prose = sum(len(ln.split()) >= 8 and ln.rstrip().endswith((".", "?", "!")) and not _CODE_LINE.search(ln)
                for ln in lines)
    return code * 2 >= len(lines) and prose * 3 < len(lines)


def paragraphs(text: str) -> list[str]:
    """A passage's paragraphs: its blocks as extraction joined them (blank-line separated), code kept verbatim."""
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]
