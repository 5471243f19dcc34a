"""reStructuredText (and Sphinx) to plain-text blocks: words, not markup, with the source's line numbers.

A careful line-based reader rather than docutils: docutils needs every Sphinx role and directive registered to
parse a Sphinx manual at all, and its nodes carry unreliable line numbers, which hits need. Sections follow
docutils' rule (levels in the order adornment styles first appear). Inline markup is rendered as a reader sees it:
":class:`~pkg.Session`" is "Session", "`the docs <https://…>`_" is "the docs", "``x``" is "x", "**b**" is "b".
Directives: code blocks keep their code, admonitions and other content directives keep their text, and those
whose body is not prose (toctree, raw, comments, index, images, ...) are dropped with their options.
"""

from __future__ import annotations

import re

from searchlm.records import Block

_ADORN = re.compile(r"^([=\-~^*#+`:'\"._])\1{2,}\s*$")
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(?:([\w:.-]+)::(?:\s+(.*))?|(.*))$")
_TABLE_RULE = re.compile(r"^\s*[+=|-][-=+|\s]*$")
# Directives whose content is not prose: the directive and everything indented under it is dropped.
_DROP = {
    "toctree", "raw", "index", "include", "literalinclude", "image", "contents", "highlight", "currentmodule",
    "module", "py:module", "py:currentmodule", "tabularcolumns", "only", "meta", "sectnum", "role", "default-role",
    "autosummary", "program", "option-list", "ifconfig", "plot", "graphviz", "include-file", "csv-table",
}
_CODE = {"code-block", "code", "sourcecode", "literalinclude", "doctest", "testcode", "testoutput", "parsed-literal"}
# Directives whose argument is a path or a label, not text.
_NO_ARGUMENT = {"figure", "image", "code-block", "code", "sourcecode", "highlight", "only"}
_LABELS = {
    "versionadded": "Added in version", "versionchanged": "Changed in version", "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}

_ROLE_TITLED = re.compile(r":[\w.+-]+(?::[\w.+-]+)?:`([^`<]*?)\s*<[^`>]*>`")
_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)?:`!?~?([^`]*)`")
_LINK_TITLED = re.compile(r"`([^`<]+?)\s*<[^`>]*>`__?")
_LINK = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_INTERPRETED = re.compile(r"(?<![\w`])`([^`]+)`(?!\w)")
_STRONG = re.compile(r"(?<![\w*])\*\*([^*\s](?:[^*]*?[^*\s])?)\*\*(?![\w*])")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])")
_FOOTNOTE_REF = re.compile(r"\s?\[(?:#[\w-]*|\d+|\*)\]_")
_NAMED_REF = re.compile(r"(?<![\w`])([A-Za-z][\w-]*)__?(?![\w])")
_FIELD = re.compile(r"^(\s*):([^:`\s][^:`]*):(\s|$)", re.M)


def clean_inline(text: str) -> str:
    """Render reST inline markup as plain text."""
    protected: list[str] = []

    def keep(value: str) -> str:
        protected.append(value)
        return f"\x00{len(protected) - 1}\x00"

    text = _LITERAL.sub(lambda m: keep(m.group(1)), text)  # literals first: their contents are never markup
    text = _ROLE_TITLED.sub(lambda m: keep(m.group(1)), text)
    text = _ROLE.sub(lambda m: keep(_role_target(m.group(0), m.group(1))), text)
    text = _LINK_TITLED.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _INTERPRETED.sub(lambda m: m.group(1), text)
    text = _STRONG.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(1), text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _NAMED_REF.sub(lambda m: m.group(1), text)
    text = _FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}:{m.group(3)}", text)
    text = re.sub(r"\\ ", "", text)
    text = re.sub(r"\\(.)", r"\1", text)
    text = re.sub(r"\s*::$", lambda m: "" if m.group(0).startswith((" ", "\n")) else ":", text.rstrip())
    return re.sub("\x00(\\d+)\x00", lambda m: protected[int(m.group(1))], text)


def _role_target(role: str, target: str) -> str:
    """What a role shows: `~a.b.C` -> C, `.Session` -> Session, a :ref: label -> its words."""
    if "`~" in role:
        target = target.rsplit(".", 1)[-1]
    target = target.lstrip(".")
    if role.startswith((":pep:", ":rfc:")):
        return f"{role[1:4].upper()} {target}"
    if role.startswith((":ref:", ":std:ref:", ":doc:")):
        target = re.sub(r"[-_/]+", " ", target.rsplit("/", 1)[-1]).strip()
    return target


class _Builder:
    """Paragraph lines into blocks under the current heading path; literal (code) blocks are kept verbatim."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.start = self.end = 0
        self.literal = False

    def add(self, lineno: int, line: str, literal: bool = False) -> None:
        if not self.lines:
            self.start, self.literal = lineno, literal
        elif literal != self.literal:
            self.flush()
            self.start, self.literal = lineno, literal
        self.lines.append(line)
        self.end = lineno

    def flush(self) -> None:
        if self.lines:
            if self.literal:
                text = _dedent("\n".join(self.lines))
            else:
                text = clean_inline("\n".join(ln for ln in self.lines if not _TABLE_RULE.match(ln)).strip("\n"))
                text = _dedent(text)
            if text.strip():
                self.blocks.append(Block(text, tuple(h for _, h in self.headings), self.start, self.end))
        self.lines = []

    def heading(self, level: int, title: str) -> None:
        self.flush()
        self.headings = [(lv, h) for lv, h in self.headings if lv < level] + [(level, title)]


def _dedent(text: str) -> str:
    lines = text.split("\n")
    indents = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(ln[cut:] for ln in lines).strip("\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def extract_rst(lines: list[str]) -> tuple[str, list[Block]]:
    """(title, blocks) of reST source lines."""
    b = _Builder()
    styles: list[tuple[str, bool]] = []
    title = ""
    literal_above: int | None = None  # indent of the text that opened a literal block ("::" or a code directive)
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if literal_above is not None:
            if not stripped:
                if b.lines and b.literal:
                    b.add(i + 1, "", literal=True)
                else:
                    b.flush()
                i += 1
                continue
            if _indent(line) > literal_above:
                b.add(i + 1, line, literal=True)
                i += 1
                continue
            literal_above = None
            b.flush()
        over = _ADORN.match(line)
        if over and i + 2 < n and lines[i + 1].strip() and _ADORN.match(lines[i + 2]) and lines[i + 2].strip() == stripped:
            style, text, step = (stripped[0], True), lines[i + 1].strip(), 3
        elif stripped and not over and i + 1 < n and _ADORN.match(lines[i + 1]) \
                and len(lines[i + 1].strip()) >= len(stripped) and not b.lines and not line[0].isspace():
            style, text, step = (lines[i + 1].strip()[0], False), stripped, 2
        elif over and not b.lines:  # a transition (horizontal rule)
            b.flush()
            i += 1
            continue
        else:
            directive = _DIRECTIVE.match(line)
            if directive:
                i = _directive(lines, i, directive, b)
                if directive.group(2) and (directive.group(2).split(":")[-1] in _CODE):
                    literal_above = len(directive.group(1))
                continue
            if not stripped:
                b.flush()
            else:
                b.add(i + 1, line)
                if stripped.endswith("::") and not stripped.startswith(".."):
                    literal_above = _indent(line)
                    b.flush()
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        text = clean_inline(text)
        title = title or text
        b.heading(styles.index(style) + 1, text)
        i += step
    b.flush()
    return title, b.blocks


def _directive(lines: list[str], i: int, match: re.Match, b: _Builder) -> int:
    """Handle the explicit markup starting at line `i`; returns the index of the first line after what it consumed
    (the options, and the whole body when it is not prose)."""
    b.flush()
    indent = len(match.group(1))
    name, argument, other = match.group(2), (match.group(3) or "").strip(), match.group(4)
    j = i + 1
    while j < len(lines) and lines[j].strip().startswith(":") and _indent(lines[j]) > indent:  # options
        j += 1
    body_end = j
    while body_end < len(lines) and (not lines[body_end].strip() or _indent(lines[body_end]) > indent):
        body_end += 1
    while body_end > j and not lines[body_end - 1].strip():
        body_end -= 1
    if name is None:  # a comment, target, footnote, citation or substitution definition
        note = re.match(r"^\[[^\]]+\]\s+(.*)$", other or "")
        if note:  # footnote or citation: its text is prose
            b.add(i + 1, match.group(1) + "   " + note.group(1))
            return i + 1
        return body_end
    base = name.split(":")[-1]
    if base in _DROP:
        return body_end
    if base in _LABELS:
        b.add(i + 1, f"{match.group(1)}{_LABELS[base]} {argument}." if argument else _LABELS[base] + ".")
        b.flush()
    elif argument and base not in _NO_ARGUMENT:
        b.add(i + 1, match.group(1) + argument)
        b.flush()
    return j
