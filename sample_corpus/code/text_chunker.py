"""Split long documents into overlapping chunks before embedding them.

Embedding models accept a limited number of tokens (often 256 or 512), and a
single vector for a 20-page document blurs every topic in it together. The
usual fix is to cut each document into chunks of a few hundred words, embed
every chunk separately, and store a pointer from each chunk back to its source
document and character offsets.

Two ideas make chunking work well:

* Overlap. Consecutive chunks share some text (for example 50 words), so a
  sentence that falls on a boundary still appears whole in at least one chunk.
* Respecting structure. Cutting in the middle of a sentence or a heading
  section hurts retrieval quality, so this module first splits on blank lines
  (paragraphs) and only falls back to a sliding word window for paragraphs
  that are longer than the chunk size.

The functions here count *words*, not model tokens, to stay dependency-free.
As a rule of thumb, English text averages about 1.3 tokens per word, so
``max_words=300`` is roughly 400 tokens.

Example::

    >>> text = "First paragraph.\\n\\nSecond paragraph is here."
    >>> [c.text for c in chunk_text(text, max_words=3, overlap=1)]
    ['First paragraph.', 'Second paragraph is', 'is here.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, List

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document.

    Attributes:
        text: the chunk's text, whitespace-normalised.
        index: position of the chunk within its document, starting at 0.
        word_start: index of the chunk's first word in the whole document.
    """

    text: str
    index: int
    word_start: int


def _sliding_window(words: List[str], max_words: int, overlap: int) -> Iterator[List[str]]:
    """Yield windows of ``max_words`` words, each sharing ``overlap`` words
    with the previous window. The step size is ``max_words - overlap``."""
    if overlap >= max_words:
        raise ValueError("overlap must be smaller than max_words")
    step = max_words - overlap
    for start in range(0, max(len(words) - overlap, 1), step):
        yield words[start:start + max_words]


def chunk_text(text: str, max_words: int = 300, overlap: int = 50) -> List[Chunk]:
    """Split ``text`` into chunks of at most ``max_words`` words.

    Short paragraphs are packed together greedily until adding the next one
    would exceed the limit. A paragraph longer than the limit is cut with a
    sliding window so that neighbouring pieces overlap by ``overlap`` words.
    """
    chunks: List[Chunk] = []
    buffer: List[str] = []
    buffer_start = 0
    position = 0  # running word offset in the document

    def flush() -> None:
        nonlocal buffer
        if buffer:
            chunks.append(Chunk(" ".join(buffer), len(chunks), buffer_start))
            buffer = []

    for paragraph in _PARAGRAPH_BREAK.split(text):
        words = paragraph.split()
        if not words:
            continue
        if len(words) > max_words:
            flush()
            offset = 0
            for window in _sliding_window(words, max_words, overlap):
                chunks.append(Chunk(" ".join(window), len(chunks), position + offset))
                offset += max_words - overlap
        elif len(buffer) + len(words) > max_words:
            flush()
            buffer, buffer_start = list(words), position
        else:
            if not buffer:
                buffer_start = position
            buffer.extend(words)
        position += len(words)
    flush()
    return chunks


if __name__ == "__main__":
    import sys

    source = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else __doc__
    for chunk in chunk_text(source, max_words=80, overlap=15):
        print(f"--- chunk {chunk.index} (starts at word {chunk.word_start}) ---")
        print(chunk.text)
