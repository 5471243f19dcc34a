"""Plain text, Markdown, reStructuredText and source code, split into blocks with line numbers."""

from __future__ import annotations

import re
from pathlib import Path

from searchlm.extract.decode import decode, normalize_newlines
from searchlm.records import Block, ExtractedDocument

_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RST_ADORN = re.compile(r"^([=\-~^*#+`:'\"._])\1{2,}\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_TXT_RULE = re.compile(r"^([=\-~*])\1{2,}\s*$")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def extract_text(data: bytes, path: Path, kind: str) -> ExtractedDocument:
    text = normalize_newlines(decode(data))
    lines = text.split("\n")
    if kind == "md":
        title, blocks = _markdown(lines)
    elif kind == "rst":
        title, blocks = _rst(lines)
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


def _markdown(lines: list[str]) -> tuple[str, list[Block]]:
    b = _Builder()
    title = ""
    in_fence = False
    start = 0
    joined = "\n".join(lines)
    front = _FRONT_MATTER.match(joined)
    if front:
        start = front.group(0).count("\n")
        m = re.search(r"^title:\s*(.+)$", front.group(0), re.M)
        if m:
            title = m.group(1).strip().strip("\"'")
    i = start
    while i < len(lines):
        line, lineno = lines[i], i + 1
        if _FENCE.match(line):
            in_fence = not in_fence
            b.add_line(lineno, line)
        elif in_fence:
            b.add_line(lineno, line)
        elif m := _ATX.match(line):
            level, text = len(m.group(1)), m.group(2).strip()
            title = title or (text if level == 1 else "")
            b.heading(level, text, lineno)
        elif (
            i + 1 < len(lines)
            and line.strip()
            and _SETEXT.match(lines[i + 1])
            and not b._lines
        ):
            level = 1 if lines[i + 1].startswith("=") else 2
            title = title or (line.strip() if level == 1 else "")
            b.heading(level, line.strip(), lineno)
            i += 1
        elif not line.strip():
            b.flush()
        else:
            b.add_line(lineno, line)
        i += 1
    b.flush()
    if not title and b.headings:
        title = b.headings[0][1]
    return title, b.blocks


def _rst(lines: list[str]) -> tuple[str, list[Block]]:
    """reST section titles: a text line underlined (optionally overlined) by a repeated punctuation character.

    Levels follow the order in which adornment styles first appear, as docutils does.
    """
    b = _Builder()
    styles: list[tuple[str, bool]] = []
    title = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        over = _RST_ADORN.match(line)
        if (
            over
            and i + 2 < len(lines)
            and lines[i + 1].strip()
            and _RST_ADORN.match(lines[i + 2])
            and lines[i + 2].strip() == line.strip()
        ):
            style, text, lineno, step = (line.strip()[0], True), lines[i + 1].strip(), i + 2, 3
        elif (
            line.strip()
            and not over
            and i + 1 < len(lines)
            and _RST_ADORN.match(lines[i + 1])
            and len(lines[i + 1].strip()) >= len(line.strip())
            and not b._lines
        ):
            style, text, lineno, step = (lines[i + 1].strip()[0], False), line.strip(), i + 1, 2
        else:
            if not line.strip():
                b.flush()
            elif not line.strip().startswith(".. "):
                b.add_line(i + 1, line)
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        level = styles.index(style) + 1
        title = title or text
        b.heading(level, text, lineno)
        i += step
    b.flush()
    return title, b.blocks


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
