"""Citation markers in generated text: keep the ones that point at a passage, drop the rest, and never invent one.

A small model cites loosely: `[9]` with five passages, `[1, 7]`, `[Passage 2]`, or nothing at all. `check_citations`
removes every number that names no passage. A sentence left without a marker gets one only when it can be traced
to a passage: its content words (all of them for a short answer, 80 % for a sentence) occur in that passage,
and the best-ranked such passage wins. Otherwise the sentence stays uncited: no guessed source.

`CheckedStream` does the same while the text streams, so that what a reader is shown is already the checked text
(`check_citations` is that stream fed the whole text at once).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from searchlm.text import SENTENCE_END, content_words, words

log = logging.getLogger(__name__)

_MARKER = re.compile(r"\[\s*(?:passages?|source|doc(?:ument)?)?\s*(\d+(?:\s*(?:,|;|and)\s*\d+)*)\s*\]", re.IGNORECASE)
_ANY_BRACKET_NUMBERS = re.compile(r"\[[^\]\n]{0,30}\d[^\]\n]{0,30}\]")
_OPEN_END = re.compile(r"[\s.!?]+$")
TRACE_SHARE = 0.8  # share of a sentence's content words that must occur in a passage to trace it there

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
    stream = CheckedStream(passages, share=share)
    stream.feed(text)
    text = stream.finish()
    return text, cited_numbers(text)


def check_sentence(sentence: str, passage_words: list[set[str]], share: float | None = None) -> str:
    """One sentence, its markers already valid: re-pointed if its cited passages do not hold it, traced if it
    cites none."""
    if _MARKER.search(sentence):
        return _repoint(sentence, passage_words, share)
    n = trace(sentence, passage_words, share)
    return sentence if n is None else _append_marker(sentence, n)


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
    # (a space before a dot that starts a word stays: "files ending in .html")
    return _append_marker(re.sub(r"\s+([.,;:!?])(?=\s|$)", r"\1", " ".join(bare.split())), source)


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
                if ch == "[":  # what was held opened no marker; this may
                    self._release(checked=False)
                    self.held = ch
                    continue
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


# prepare(sentence, first, complete): the sentence as it should be checked; "" drops it; None (only while it is
# incomplete) holds it back until it can tell.
Prepare = Callable[[str, bool, bool], "str | None"]


class CheckedStream:
    """Checks citations while text streams, so that the text shown is the checked text, never a draft of it.

    Generated pieces go in through `feed`; `emit` gets the checked text in pieces whose concatenation is what
    `finish` returns. Markers are checked as they close (`MarkerFilter`), and each sentence once it is complete
    (`check_sentence`). Its words pass on as they come all the same, up to its first marker: the check cannot
    change them. What it may change waits for the end of the sentence: the markers (re-pointing moves them to
    the end) and the closing punctuation (a traced marker goes before it). A sentence's first words therefore
    show as soon as the model writes them, and a reader never sees a marker that is later moved or dropped.

    `prepare` may rewrite each sentence before it is checked (see `Prepare`): cut a preamble, drop a repeat.
    `on_sentence` gets each sentence once it is complete and checked, for a caller that judges whole sentences
    before showing them (`ask` shows only those it can trace, so that nothing shown is ever taken back).
    """

    def __init__(
        self, passages: list[str], emit: Callable[[str], None] | None = None, share: float | None = None,
        prepare: Prepare | None = None, on_sentence: Callable[[str], None] | None = None,
    ):
        self.passage_words = [set(words(p)) for p in passages]
        self.emit = emit
        self.share = share
        self.prepare = prepare
        self.on_sentence = on_sentence
        self.markers = MarkerFilter(len(passages), self._add)
        self.sentences: list[str] = []  # complete and checked
        self.raw = ""  # the sentence being written (its markers checked)
        self.shown = ""  # how much of it has been passed on

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    def feed(self, piece: str) -> None:
        self.markers.feed(piece)

    def finish(self) -> str:
        """Check what is left (the last sentence) and return the whole checked text."""
        self.markers.flush()
        self._complete(self.raw)
        self.raw = ""
        return self.text

    def _add(self, text: str) -> None:
        self.raw += text
        while (split := SENTENCE_END.search(self.raw)) is not None:
            sentence, self.raw = self.raw[: split.start()], self.raw[split.end():]
            self._complete(sentence)
        self._show(_settled(self._prepared(self.raw, complete=False)))

    def _prepared(self, raw: str, complete: bool) -> str | None:
        sentence = _spaced(raw)
        if self.prepare is None or not sentence:
            return sentence
        return self.prepare(sentence, not self.sentences, complete)

    def _complete(self, raw: str) -> None:
        sentence = self._prepared(raw, complete=True)
        if sentence:
            checked = check_sentence(sentence, self.passage_words, self.share)
            self._show(checked)
            self.sentences.append(checked)
            if self.on_sentence is not None:
                self.on_sentence(checked)
        elif self.shown:
            log.warning("streamed text %r was dropped by the citation check", self.shown)
        self.shown = ""

    def _show(self, text: str) -> None:
        if not text.startswith(self.shown):  # cannot happen by construction (see the tests); never hide it
            log.warning("streamed text %r is not the start of the checked sentence %r", self.shown, text)
            self.shown = text
            return
        new = text[len(self.shown):]
        if not new:
            return
        if not self.shown and self.sentences:
            new = " " + new
        self.shown = text
        if self.emit is not None:
            self.emit(new)


def _spaced(sentence: str) -> str:
    """Single spaces, none before punctuation, adjacent markers joined: `check_citations`' spacing."""
    return re.sub(r" ([.,;:!?])(?=\s|$|\[)", r"\1", re.sub(r"\]\s+\[", "][", " ".join(sentence.split())))


def _settled(sentence: str | None) -> str:
    """What of an incomplete sentence its check can no longer change: the text before its first marker,
    less its closing punctuation and spaces."""
    if not sentence:
        return ""
    cut = sentence.find("[")
    return _OPEN_END.sub("", sentence if cut < 0 else sentence[:cut])
