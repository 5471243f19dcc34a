"""Citation markers in generated text: keep the ones that point at a passage, drop the rest, and never invent one.

A small model cites loosely: `[9]` with five passages, `[1, 7]`, `[Passage 2]`, or nothing at all. `check_citations`
removes every number that names no passage. A sentence left without a marker gets one only when it can be traced
to a passage: its content words (all of them for a short answer, 80 % for a sentence) occur in that passage,
and the best-ranked such passage wins. Otherwise the sentence stays uncited: no guessed source.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[\s*(?:passages?|source|doc(?:ument)?)?\s*(\d+(?:\s*(?:,|;|and)\s*\d+)*)\s*\]", re.IGNORECASE)
_ANY_BRACKET_NUMBERS = re.compile(r"\[[^\]\n]{0,30}\d[^\]\n]{0,30}\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
TRACE_SHARE = 0.8  # share of a sentence's content words that must occur in a passage to trace it there

STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or is are was were be been being do does did what which who
    whom whose when where why how that this these those it its as into than then there their they he she his her
    him i you we our your my me not no can could would should will shall may might has have had about over under
    after before during between through per also other some any many much more most such one two name named called
    call type kind use used get make made way often usually typically so if but just only very""".split()
)


def words(text: str) -> list[str]:
    """Lower-cased words with a light suffix strip, so "points" matches "point" and "trained" "train"."""
    return [_stem(w) for w in _WORD.findall(text.lower())]


def content_words(text: str) -> list[str]:
    return [w for w in dict.fromkeys(words(text)) if w not in STOPWORDS]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def sentences(text: str) -> list[str]:
    """Sentences with their line breaks and runs of spaces made single spaces."""
    return [" ".join(s.split()) for s in _SENTENCE.split(text.strip()) if s.strip()]


def cited_numbers(text: str) -> list[int]:
    """Passage numbers in the order they are first cited."""
    out: list[int] = []
    for match in _MARKER.finditer(text):
        for n in re.findall(r"\d+", match.group(1)):
            if int(n) not in out:
                out.append(int(n))
    return out


def check_citations(text: str, passages: list[str], share: float | None = None) -> tuple[str, list[int]]:
    """Return the text with markers that point at no passage removed, uncited sentences traced where they can
    be, and the passage numbers (1-based) in order of first citation.

    `share` (default TRACE_SHARE) is the part of a sentence's content words a passage must hold; with a lower
    share, as for summaries that paraphrase, the passage holding the most of them is cited."""
    count = len(passages)

    def keep_valid(match: re.Match) -> str:
        valid = [n for n in dict.fromkeys(int(x) for x in re.findall(r"\d+", match.group(1))) if 1 <= n <= count]
        return "".join(f"[{n}]" for n in valid)

    text = _MARKER.sub(keep_valid, text)
    # What is left in brackets with a number in it ("[page 3]", "[1a]") is nothing a reader could follow.
    text = _ANY_BRACKET_NUMBERS.sub(lambda m: m.group(0) if re.fullmatch(r"\[\d+\]", m.group(0)) else "", text)
    text = re.sub(r"\]\s+\[", "][", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    passage_words = [set(words(p)) for p in passages]
    out = []
    for sentence in sentences(text) if text else []:
        if not _MARKER.search(sentence):
            n = trace(sentence, passage_words, share)
            if n is not None:
                sentence = _append_marker(sentence, n)
        else:
            sentence = _repoint(sentence, passage_words, share)
        out.append(sentence)
    text = " ".join(out)
    return text, cited_numbers(text)


def trace(sentence: str, passage_words: list[set[str]], share: float | None = None) -> int | None:
    """The 1-based number of the passage that holds the sentence's content words, or None: the best-ranked one
    at the default share, the one that holds most of them at a lower share."""
    wanted = content_words(sentence) or [w for w in words(sentence)]
    if not wanted:
        return None
    strict = share is None or share >= TRACE_SHARE
    need = len(wanted) if len(wanted) <= 3 else (TRACE_SHARE if share is None else share) * len(wanted)
    held = [sum(w in have for w in wanted) for have in passage_words]
    if strict:
        return next((n for n, count in enumerate(held, start=1) if count >= need), None)
    best = max(range(len(held)), key=lambda i: held[i], default=None)
    return best + 1 if best is not None and held[best] >= need else None


def _repoint(sentence: str, passage_words: list[set[str]], share: float | None) -> str:
    """A cited sentence whose words none of its cited passages hold, but another passage does (a quote from
    [1] marked [2]), gets the marker of the passage it came from."""
    bare = _MARKER.sub("", sentence)
    wanted = content_words(bare)
    if len(wanted) < 4:
        return sentence  # too short to judge where it came from
    need = (TRACE_SHARE if share is None else share) * len(wanted)
    cited = [int(x) for m in _MARKER.finditer(sentence) for x in re.findall(r"\d+", m.group(1))]
    if any(sum(w in passage_words[n - 1] for w in wanted) >= need for n in cited if 1 <= n <= len(passage_words)):
        return sentence
    source = trace(bare, passage_words, share)
    if source is None:
        return sentence
    return _append_marker(re.sub(r"\s+([.,;:!?])", r"\1", " ".join(bare.split())), source)


def _append_marker(sentence: str, n: int) -> str:
    end = len(sentence.rstrip(".!?"))
    return f"{sentence[:end]} [{n}]{sentence[end:]}"


class MarkerFilter:
    """Checks markers while text streams: what follows a `[` is held back until its `]`, then passed on only
    if every number in it names a passage. Feed pieces with `feed`, then call `flush` once at the end."""

    HOLD = 40  # a `[` not closed within this many characters is not a marker

    def __init__(self, count: int, emit):
        self.count = count
        self.emit = emit
        self.held = ""
        self.buffer = ""

    def feed(self, piece: str) -> None:
        for ch in piece:
            if self.held:
                self.held += ch
                if ch == "]":
                    self._release(checked=True)
                elif ch == "\n" or len(self.held) > self.HOLD:
                    self._release(checked=False)
            elif ch == "[":
                self.held = ch
            else:
                self._out(ch)
        self._drain()

    def _release(self, checked: bool) -> None:
        text, self.held = self.held, ""
        if checked and _ANY_BRACKET_NUMBERS.fullmatch(text):
            match = _MARKER.fullmatch(text)
            numbers = [int(x) for x in re.findall(r"\d+", match.group(1))] if match else []
            valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= self.count]
            text = "".join(f"[{n}]" for n in valid)
        self._out(text)

    def _out(self, text: str) -> None:
        self.buffer += text

    def _drain(self) -> None:
        out, self.buffer = self.buffer, ""
        if out:
            self.emit(out)

    def flush(self) -> None:
        if self.held:
            self._release(checked=False)
        self._drain()
