"""Plain text and source code split into blocks with line numbers; Markdown and reST through their own readers."""

from __future__ import annotations

import re
from pathlib import Path

from searchlm.extract.decode import decode, normalize_newlines
from searchlm.extract.markdown import extract_markdown
from searchlm.extract.rst import extract_rst
from searchlm.records import Block, ExtractedDocument

_TXT_RULE = re.compile(r"^([=\-~*])\1{2,}\s*$")


def extract_text(data: bytes, path: Path, kind: str, targets=None) -> ExtractedDocument:
    text = normalize_newlines(decode(data))
    lines = text.split("\n")
    if kind == "md":
        title, blocks = extract_markdown(text, targets, path)
    elif kind == "rst":
        title, blocks = extract_rst(lines, targets, path)
    elif kind == "txt":
        _, blocks = _plain_text(lines)
        title = _plain_title(lines)
    else:
        title, blocks = _paragraphs(lines)
        title = path.name
    return ExtractedDocument(title=title or path.stem, blocks=blocks, kind=kind)


class _Builder:
    """Collects paragraph lines into blocks under the current heading path."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self._lines: list[str] = []
        self._start: int | None = None

    def add_line(self, lineno: int, line: str) -> None:
        if self._start is None:
            self._start = lineno
        self._lines.append(line)
        self._end = lineno

    def flush(self) -> None:
        if self._lines and any(line.strip() for line in self._lines):
            self.blocks.append(
                Block(
                    text="\n".join(self._lines).strip("\n"),
                    headings=tuple(h for _, h in self.headings),
                    start_line=self._start,
                    end_line=self._end,
                )
            )
        self._lines, self._start = [], None

    def heading(self, level: int, title: str, lineno: int) -> None:
        self.flush()
        self.headings = [(lv, h) for lv, h in self.headings if lv < level] + [(level, title)]


def _paragraphs(lines: list[str]) -> tuple[str, list[Block]]:
    b = _Builder()
    for i, line in enumerate(lines):
        if line.strip():
            b.add_line(i + 1, line)
        else:
            b.flush()
    b.flush()
    return "", b.blocks


def _plain_text(lines: list[str]) -> tuple[str, list[Block]]:
    """Plain text: paragraphs, and headings as .txt files write them: a short line (two at the top of the file)
    underlined by a row of `=`, `-`, `~` or `*` at least half as long (or also overlined). Levels follow the order
    in which the underline characters first appear (as in reST). Any other rule line is a separator: it ends the
    paragraph and is dropped, never indexed as text."""
    b = _Builder()
    styles: list[str] = []

    def heading(char: str, text: str, lineno: int) -> None:
        if char not in styles:
            styles.append(char)
        b.heading(styles.index(char) + 1, text, lineno)

    i = 0
    while i < len(lines):
        text = lines[i].strip()
        rule = _TXT_RULE.match(text)
        if rule and not b._lines and i + 2 < len(lines):  # overline, title, underline of the same character
            title, under = lines[i + 1].strip(), lines[i + 2].strip()
            if title and len(title) <= 100 and not _TXT_RULE.match(title) and under == text:
                heading("^" + text[0], title, i + 2)  # its own style: overlined titles rank apart, as in reST
                i += 3
                continue
        if rule:
            pending = [ln.strip() for ln in b._lines]
            most = 2 if not b.blocks and not b.headings else 1  # a two-line title block only at the very top
            if pending and len(pending) <= most and all(len(p) <= 100 for p in pending) and len(text) >= len(pending[-1]) / 2:
                start = b._start
                b._lines, b._start = [], None  # the short paragraph above is the heading, not text
                heading(text[0], " ".join(pending), start)
            else:
                b.flush()
            i += 1
            continue
        if text:
            b.add_line(i + 1, lines[i])
        else:
            b.flush()
        i += 1
    b.flush()
    return "", b.blocks


def _plain_title(lines: list[str]) -> str:
    for line in lines[:5]:
        s = line.strip()
        if s and not _TXT_RULE.match(s):
            return s if len(s) <= 100 else ""
    return ""
