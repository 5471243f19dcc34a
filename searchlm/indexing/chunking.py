"""Structure-first chunking: blocks under one heading are packed into chunks that fit the encoder.

all-MiniLM-L6-v2 truncates at 256 word pieces, so a chunk's text gets `max_tokens` (default 200) and the
title + heading path prefix that goes into the embedded text gets the rest. A block longer than the budget is
cut into overlapping windows on sentence boundaries where possible.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from searchlm.text import SENTENCE_END
from searchlm.records import Block, Chunk, ExtractedDocument

# Chinese and Japanese sentences end in full-width marks with no space after them: the chunker cuts there too.
_SENTENCE = re.compile(SENTENCE_END.pattern + r"|(?<=[。！？])\s*(?=\S)")


LONG_TEXT = 10_000  # characters: a text this long has its token count kept (TokenCounter)
# A chunk holds at most this many characters per token of its budget (2,000 for 200 tokens; prose runs ~4.5).
# Token counts alone do not bound a chunk: the encoder's tokenizer reads a run of over 100 letters with no space
# or punctuation as one unknown token, so a 19 MB unbroken line counted as one token and became one chunk.
MAX_CHARS_PER_TOKEN = 10


@dataclass(frozen=True)
class ChunkerSettings:
    max_tokens: int = 200
    overlap_tokens: int = 32

    def to_json(self) -> dict:
        return asdict(self)


class TokenCounter:
    """Counts word pieces with the encoder's own tokenizer (fast, no torch); falls back to words × 1.3."""

    def __init__(self, tokenizer_file: Path | None = None):
        self._tok = None
        if tokenizer_file is not None and tokenizer_file.is_file():
            from tokenizers import Tokenizer

            self._tok = Tokenizer.from_file(str(tokenizer_file))
            self._tok.no_truncation()
            self._tok.no_padding()
        # The chunker counts a long block, then its one sentence, then its one "word", then the piece: the same
        # text up to four times. An 800 KB line of markup with no space took 2 s a count (a fuzzed corpus: 94 of
        # its CPU-seconds), so the last few long texts keep their counts.
        self._long: dict[str, int] = {}

    def count(self, text: str) -> int:
        if self._tok is None:
            return int(len(text.split()) * 1.3) + 1
        if len(text) < LONG_TEXT:
            return len(self._tok.encode(text, add_special_tokens=False).ids)
        found = self._long.get(text)
        if found is None:
            found = len(self._tok.encode(text, add_special_tokens=False).ids)
            if len(self._long) >= 4:
                self._long.pop(next(iter(self._long)))
            self._long[text] = found
        return found


def content_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_text_for(title: str, headings: tuple[str, ...], text: str) -> str:
    """The text that gets embedded: title and heading path give a chunk the context a reader would have."""
    path = [h for h in headings if h and h != title]
    parts = [title] if title else []
    if path:
        parts.append(" > ".join(path))
    parts.append(text)
    return "\n".join(parts)


def chunk_document(doc: ExtractedDocument, counter: TokenCounter, settings: ChunkerSettings) -> list[Chunk]:
    pieces: list[tuple[Block, int]] = []
    for block in doc.blocks:
        pieces.extend(_split_long(block, counter, settings))
    groups: list[_Group] = []
    for piece, tokens in pieces:
        last = groups[-1] if groups else None
        same_section = last is not None and piece.headings == last.headings and piece.page == last.page
        if last is None or not same_section or not last.fits(tokens, len(piece.text), settings):
            groups.append(_Group([], piece.headings, piece.page))
        groups[-1].blocks.append(piece)
        groups[-1].tokens += tokens
        groups[-1].chars += len(piece.text) + 2
    chunks: list[Chunk] = []
    for group in _fold_stubs(groups, settings):
        text = "\n\n".join(b.text for b in group.blocks).strip()
        embed = embed_text_for(doc.title, group.headings, text)
        lines = [b.start_line for b in group.blocks if b.start_line is not None]
        ends = [b.end_line for b in group.blocks if b.end_line is not None]
        chunks.append(
            Chunk(
                text=text,
                embed_text=embed,
                heading=" > ".join(group.headings),
                start_line=min(lines) if lines else None,
                end_line=max(ends) if ends else None,
                page=group.page,
                hash=content_hash(embed),
                ordinal=len(chunks),
            )
        )
    return chunks


@dataclass
class _Group:
    """Blocks of one section (and page) that become one chunk."""

    blocks: list[Block]
    headings: tuple[str, ...]
    page: int | None
    tokens: int = 0
    chars: int = 0  # of its blocks' texts, with the blank line between two

    def fits(self, tokens: int, chars: int, settings: ChunkerSettings) -> bool:
        """Whether `tokens` and `chars` more stay within the chunk budget."""
        return (self.tokens + tokens <= settings.max_tokens
                and self.chars + chars <= settings.max_tokens * MAX_CHARS_PER_TOKEN)


_NAME = re.compile(r"^[A-Za-z_]\w*(?:(?:\.|::)\w+)*(?:\(\))?[,;]?$")  # Session, orm.Session, create_engine()
_NAME_MARK = re.compile(r"[._(]|::|[a-z][A-Z]|\d")  # what sets a name apart from a word: orm.Session, get_bind
_PROSE_END = re.compile(r"[.!?。！？](?:\s|$)")
STUB_WORDS = 8


def is_stub(text: str) -> bool:
    """Whether a chunk's text has no prose of its own: a few words (STUB_WORDS at most) with no sentence end in
    them, or nothing but names ("orm.Session.", "create_engine(), sessionmaker."). Such a chunk (a version
    number, a lone API name, a table's stray cell) ranks on a name match alone and says nothing, so it is folded
    into a neighbour."""
    words = text.split()
    if len(words) > STUB_WORDS:
        return False
    names = [w.rstrip(".:") for w in words]
    return not _PROSE_END.search(text) or (all(map(_NAME.match, names)) and any(map(_NAME_MARK.search, names)))


def _fold_stubs(groups: list[_Group], settings: ChunkerSettings) -> list[_Group]:
    """Groups whose text is a stub joined to a neighbour on the same page: the next group of the same section
    (a name usually introduces what follows), else the previous one of the same section, else the previous or
    the next one of another section. The host keeps its heading and the stub's blocks keep their lines, so the
    chunk's lines span both. A neighbour is taken while the two fit `max_tokens`, else the first one when the stub
    is small; a stub too long for that, or the one chunk of its document, stays a chunk."""
    i = 0
    while i < len(groups):
        stub = groups[i]
        stubby = len(groups) > 1 and is_stub("\n".join(b.text for b in stub.blocks))
        host = _host(groups, i, settings) if stubby else None
        if host is None:
            i += 1
            continue
        target = groups[host]
        target.blocks = target.blocks + stub.blocks if host < i else stub.blocks + target.blocks
        target.tokens += stub.tokens
        target.chars += stub.chars
        del groups[i]
        i = max(0, i - 1) if host < i else i  # a grown group may be looked at again; the list moved up by one
    return groups


def _host(groups: list[_Group], i: int, settings: ChunkerSettings) -> int | None:
    """Index of the group that takes the stub at `i`, or None."""
    stub = groups[i]
    before = i - 1 if i > 0 else None
    after = i + 1 if i + 1 < len(groups) else None

    def same_section(k: int | None) -> bool:
        return k is not None and groups[k].headings == stub.headings and groups[k].page == stub.page

    def same_page(k: int | None) -> bool:
        return k is not None and groups[k].page == stub.page

    order = [k for k, ok in ((after, same_section(after)), (before, same_section(before)),
                             (before, same_page(before)), (after, same_page(after))) if ok]
    for k in order:
        if groups[k].fits(stub.tokens, stub.chars, settings):
            return k
    # None has room: the first takes it all the same when it is small. The encoder may cut the chunk's tail, the
    # stub; it is no prose to lose, and its text is still shown and keyword-searched with the host's. Never past
    # the character cap: a piece of an unbroken line is one "word", so a stub, and would gather them all again.
    max_chars = settings.max_tokens * MAX_CHARS_PER_TOKEN
    small = stub.tokens <= settings.max_tokens // 2
    return order[0] if order and small and stub.chars + groups[order[0]].chars <= max_chars else None


def _split_long(block: Block, counter: TokenCounter, settings: ChunkerSettings) -> list[tuple[Block, int]]:
    """The block, or its overlapping windows that fit the budget, each with its token count."""
    max_chars = settings.max_tokens * MAX_CHARS_PER_TOKEN
    if len(block.text) <= max_chars:
        tokens = counter.count(block.text)
        if tokens <= settings.max_tokens:
            return [(block, tokens)]
    # Units: sentences, or words when a "sentence" is itself too long (code, tables), or pieces of a "word" that
    # is itself too long (a line of markup or base64 with no space). Lengths are checked before tokens: counting
    # a long text costs more than measuring it.
    units: list[str] = []
    for sentence in _SENTENCE.split(block.text):
        if len(sentence) > max_chars or counter.count(sentence) > settings.max_tokens:
            units.extend(_word_groups(sentence, max(1, settings.max_tokens // 2), max_chars))
        else:
            units.append(sentence)
    sizes = [counter.count(u) for u in units]
    total_lines = (block.end_line - block.start_line) if block.start_line and block.end_line else 0
    total_chars = max(1, len(block.text))
    out: list[tuple[Block, int]] = []
    i = 0
    offset = 0
    offsets = []
    for u in units:
        offsets.append(offset)
        offset += len(u) + 1
    while i < len(units):
        j, size, chars = i, 0, 0
        while j < len(units) and (j == i or (size + sizes[j] <= settings.max_tokens
                                             and chars + 1 + len(units[j]) <= max_chars)):
            size += sizes[j]
            chars += len(units[j]) + (j > i)
            j += 1
        text = " ".join(units[i:j])
        start_line = end_line = block.start_line
        if block.start_line is not None and total_lines:
            start_line = block.start_line + int(total_lines * offsets[i] / total_chars)
            end_line = block.start_line + int(total_lines * min(1.0, (offsets[j - 1] + len(units[j - 1])) / total_chars))
        out.append((Block(text, block.headings, start_line, end_line or block.end_line, block.page), size))
        if j >= len(units):
            break
        # Step back over whole units worth about `overlap_tokens`, always moving forward.
        back, k = 0, j
        while k - 1 > i and back + sizes[k - 1] <= settings.overlap_tokens:
            k -= 1
            back += sizes[k]
        i = k
    return out


def _word_groups(sentence: str, step: int, max_chars: int) -> list[str]:
    """A too-long sentence as runs of at most `step` words and `max_chars` characters; a single word longer
    than that is cut into pieces of `max_chars`."""
    out: list[str] = []
    run: list[str] = []
    chars = 0
    for word in sentence.split(" "):
        if len(word) > max_chars:
            if run:
                out.append(" ".join(run))
                run, chars = [], 0
            out.extend(word[k : k + max_chars] for k in range(0, len(word), max_chars))
            continue
        if run and (len(run) >= step or chars + 1 + len(word) > max_chars):
            out.append(" ".join(run))
            run, chars = [], 0
        run.append(word)
        chars += len(word) + (len(run) > 1)
    if run:
        out.append(" ".join(run))
    return out
