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
    pieces: list[Block] = []
    for block in doc.blocks:
        pieces.extend(_split_long(block, counter, settings))
    chunks: list[Chunk] = []
    group: list[Block] = []
    group_tokens = 0

    def emit() -> None:
        nonlocal group, group_tokens
        if not group:
            return
        text = "\n\n".join(b.text for b in group).strip()
        headings = group[0].headings
        embed = embed_text_for(doc.title, headings, text)
        lines = [b.start_line for b in group if b.start_line is not None]
        ends = [b.end_line for b in group if b.end_line is not None]
        chunks.append(
            Chunk(
                text=text,
                embed_text=embed,
                heading=" > ".join(headings),
                start_line=min(lines) if lines else None,
                end_line=max(ends) if ends else None,
                page=group[0].page,
                hash=content_hash(embed),
                ordinal=len(chunks),
            )
        )
        group, group_tokens = [], 0

    for piece in pieces:
        tokens = counter.count(piece.text)
        same_section = bool(group) and piece.headings == group[0].headings and piece.page == group[0].page
        if group and (not same_section or group_tokens + tokens > settings.max_tokens):
            emit()
        group.append(piece)
        group_tokens += tokens
    emit()
    return chunks


def _split_long(block: Block, counter: TokenCounter, settings: ChunkerSettings) -> list[Block]:
    if counter.count(block.text) <= settings.max_tokens:
        return [block]
    # Units: sentences, or words when a "sentence" is itself too long (code, tables).
    units: list[str] = []
    for sentence in _SENTENCE.split(block.text):
        if counter.count(sentence) > settings.max_tokens:
            words = sentence.split(" ")
            step = max(1, settings.max_tokens // 2)
            units.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
        else:
            units.append(sentence)
    sizes = [counter.count(u) for u in units]
    total_lines = (block.end_line - block.start_line) if block.start_line and block.end_line else 0
    total_chars = max(1, len(block.text))
    out: list[Block] = []
    i = 0
    offset = 0
    offsets = []
    for u in units:
        offsets.append(offset)
        offset += len(u) + 1
    while i < len(units):
        j, size = i, 0
        while j < len(units) and (size + sizes[j] <= settings.max_tokens or j == i):
            size += sizes[j]
            j += 1
        text = " ".join(units[i:j])
        start_line = end_line = block.start_line
        if block.start_line is not None and total_lines:
            start_line = block.start_line + int(total_lines * offsets[i] / total_chars)
            end_line = block.start_line + int(total_lines * min(1.0, (offsets[j - 1] + len(units[j - 1])) / total_chars))
        out.append(Block(text, block.headings, start_line, end_line or block.end_line, block.page))
        if j >= len(units):
            break
        # Step back over whole units worth about `overlap_tokens`, always moving forward.
        back, k = 0, j
        while k - 1 > i and back + sizes[k - 1] <= settings.overlap_tokens:
            k -= 1
            back += sizes[k]
        i = k
    return out
