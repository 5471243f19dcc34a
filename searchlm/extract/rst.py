"""reStructuredText (and Sphinx) to plain-text blocks: words, not markup, with the source's line numbers.

A careful line-based reader rather than docutils: docutils needs every Sphinx role and directive registered to
parse a Sphinx manual at all, and its nodes carry unreliable line numbers, which hits need. Sections follow
docutils' rule (levels in the order adornment styles first appear). Inline markup is rendered as a reader sees it:
":class:`~pkg.Session`" is "Session", "`the docs <https://…>`_" is "the docs", "``x``" is "x", "**b**" is "b".
Roles show what Sphinx shows: a private module alias goes (":func:`_sa.create_engine`" is "create_engine"), and
":ref:" and ":doc:" show the title of the section or document they name when `targets.SphinxTargets` (a cheap scan
of the folder's .rst and MyST .md files) knows it, else the label's words.
Directives: code blocks keep their code (less SQLAlchemy's "{execsql}"-style build markers), admonitions and other
content directives keep their text, and those whose body is not prose (toctree, raw, comments, index, images, ...)
are dropped with their options. Autodoc directives (".. autoclass:: Session") and ".. container:: orm-header" keep
their body but not their argument, which is a name, not text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from searchlm.records import Block

_ADORN = re.compile(r"^([=\-~^*#+`:'\"._])\1{2,}\s*$")
_DIRECTIVE = re.compile(r"^(\s*)\.\.(?:\s+(?:([\w:.-]+)::(?:\s+(.*))?|(.*))|\s*)$")
# A list item's marker: the item's text starts after it.
_ITEM = re.compile(r"^\s*(?:[-*+•]|\(?(?:\d+|#|[a-zA-Z])[.)])(?:\s+|$)")
_TABLE_RULE = re.compile(r"^\s*[+=|-][-=+|\s]*$")
# Directives whose content is not prose: the directive and everything indented under it is dropped.
_DROP = {
    "toctree", "raw", "index", "include", "literalinclude", "image", "contents", "highlight", "currentmodule",
    "module", "py:module", "py:currentmodule", "tabularcolumns", "only", "meta", "sectnum", "role", "default-role",
    "autosummary", "program", "option-list", "ifconfig", "plot", "graphviz", "include-file", "csv-table",
    "changelog_imports",
}
_CODE = {
    "code-block", "code", "sourcecode", "literalinclude", "doctest", "testcode", "testoutput", "parsed-literal",
    "click:example", "click:run",  # Pallets' example and its run: Python
}
# Directives whose argument is a path or a label, not text.
_NO_ARGUMENT = {
    "figure", "image", "code-block", "code", "sourcecode", "highlight", "only", "container", "rst-class", "grid",
    "grid-item", "card-carousel", "tab-set", "div",
}
_LABELS = {
    "versionadded": "Added in version", "versionchanged": "Changed in version", "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}

_ROLE = re.compile(r":([\w.+-]+(?::[\w.+-]+)?):`([^`]*)`")
_TITLED = re.compile(r"([^<]*?)\s*<([^<>]*)>", re.S)  # a role's "title <target>"
_LINK_TITLED = re.compile(r"`([^`<]+?)\s*<[^`>]*>`__?")
_LINK = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_INTERPRETED = re.compile(r"(?<![\w`])`([^`]+)`(?!\w)")
_STRONG = re.compile(r"(?<![\w*])\*\*([^*\s](?:[^*]*?[^*\s])?)\*\*(?![\w*])")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])")
_FOOTNOTE_REF = re.compile(r"\s?\[(?:#[\w-]*|\d+|\*)\]_")
_NAMED_REF = re.compile(r"(?<![\w`])([A-Za-z][\w-]*)__?(?![\w])")
_FIELD = re.compile(r"^(\s*):([^:`\s][^:`]*):(\s|$)", re.M)
# Roles naming a Python object: Sphinx shows the target less its private module alias ("_orm.Session" -> "Session").
_OBJECT_ROLES = {"class", "func", "meth", "attr", "data", "exc", "obj", "mod", "const", "paramref", "type", "member"}
# SQLAlchemy's doc build markers in code: "{execsql}BEGIN (implicit)", "ROLLBACK{stop}", a "{stop}" line.
_BUILD_MARKER = re.compile(r"^(\s*(?:>>>\s*)?)\{(?:[a-z]*sql|stop)\}|\{(?:[a-z]*sql|stop)\}(?=\s*$)", re.M)
_BUILD_MARKER_LINE = re.compile(r"^\s*\{(?:[a-z]*sql|stop)\}\s*$")
_BARE_MARKERS = re.compile(r"[\s*+•-]*")  # "*\n  -": the bullets of a list-table's empty or literal cells
_LABEL_LINE = re.compile(r"^\.\.[ \t]+_([^:`\n]+|`[^`\n]+`):[ \t]*$", re.M)
# What may stand between a label and its section's heading: blank lines, more labels, and directives that make no
# element of their own (with their indented options or entries), so the label names the section below them.
_AFTER_LABEL = re.compile(
    r"(?:\n[ \t]*(?=\n)|\n\.\.[ \t]+(?:_[^\n]*:|(?:rst-class|(?:py:)?currentmodule|(?:py:)?module|highlight|index)::"
    r"[^\n]*)(?=\n)|\n[ \t]+\S[^\n]*(?=\n))*\n"
)
# A section heading: an optional overline, a title line, an underline (checked further by `_heading_at`).
_HEADING = re.compile(
    r"^(?:([=\-~^*#+`:'\"._])\1{2,}[ \t]*\n)?(?!\.\.\s)[^\s][^\n]*\n([=\-~^*#+`:'\"._])\2{2,}[ \t]*$", re.M
)

Resolve = Callable[[str, str], "str | None"]  # (role, target) -> the title it shows, or None


def clean_inline(text: str, resolve: Resolve | None = None) -> str:
    """Render reST inline markup as plain text; `resolve(role, target)` gives the title a :ref: or :doc: shows."""
    protected: list[str] = []

    def keep(value: str) -> str:
        protected.append(value)
        return f"\x00{len(protected) - 1}\x00"

    text = _LITERAL.sub(lambda m: keep(m.group(1)), text)  # literals first: their contents are never markup
    text = _ROLE.sub(lambda m: keep(role_text(m.group(1), m.group(2), resolve)), text)
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


def role_text(role: str, body: str, resolve: Resolve | None = None) -> str:
    """What Sphinx shows for a role, written ":role:`body`" in reST or "{role}`body`" in MyST: the title of
    "title <target>"; else `~a.b.C` -> C, `.Session` -> Session, `_orm.Session` -> Session (a private module
    alias), a :ref: label -> its section's title, a :doc: path -> its document's title (or their words, when the
    target is not known), :pep:`8` -> PEP 8."""
    titled = _TITLED.fullmatch(body)
    if titled and titled.group(1).strip():
        return titled.group(1)
    target = titled.group(2) if titled else body
    name = role.rsplit(":", 1)[-1]
    target = target.removeprefix("!")
    short = target.startswith("~")
    target = target.removeprefix("~")
    if name in ("pep", "rfc"):
        return f"{name.upper()} {target}"
    if name in ("ref", "doc"):
        target = " ".join(target.split())
        found = resolve(name, target) if resolve else None
        return found or re.sub(r"[-_/]+", " ", target.rsplit("/", 1)[-1]).strip()
    if name not in _OBJECT_ROLES:
        return target  # :file:`.flaskenv`, :envvar:, :command:: a leading dot is part of the name
    if short:
        target = target.rsplit(".", 1)[-1]
    parts = target.lstrip(".").split(".")
    while len(parts) > 1 and parts[0].startswith("_"):  # a private module alias: "_sa.create_engine"
        parts.pop(0)
    return ".".join(parts)


def directive_rule(name: str) -> str:
    """How a directive (reST ".. name::" or MyST "```{name}") shows its body: "drop" (no prose: the directive and
    its body vanish: toctree, contents, include, images, ...), "code" (verbatim), "name" (autodoc: the argument
    names an object; a body is its text) or "text" (admonitions and other content directives)."""
    base = name.split(":")[-1]
    if base in _DROP:
        return "drop"
    if base.startswith("auto"):
        return "name"
    return "code" if base in _CODE or name in _CODE else "text"


def directive_line(name: str, argument: str) -> str | None:
    """The line a "text" directive's argument shows ("versionadded 4.0" -> "Added in version 4.0.", an
    admonition's title), or None when it has none or its argument is a path, a language or layout."""
    base = name.split(":")[-1]
    if base in _LABELS:
        return f"{_LABELS[base]} {argument}." if argument else _LABELS[base] + "."
    if argument and base not in _NO_ARGUMENT:
        return argument
    return None


def _unmark(code: str) -> str:
    """Code without SQLAlchemy's doc build markers: a line that is only a marker goes, others lose the marker."""
    if "{" not in code:
        return code
    kept = "\n".join(ln for ln in code.split("\n") if not _BUILD_MARKER_LINE.match(ln))
    return _BUILD_MARKER.sub(lambda m: m.group(1) or "", kept)


class _Builder:
    """Paragraph lines into blocks under the current heading path; literal (code) blocks are kept verbatim."""

    def __init__(self, resolve: Resolve | None = None) -> None:
        self.resolve = resolve
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
        while self.lines and not self.lines[-1].strip():  # blank lines after a literal block are not of it
            self.lines.pop()
            self.end -= 1
        if self.lines:
            if self.literal:
                text = _dedent(_unmark("\n".join(self.lines)))
            else:
                text = "\n".join(ln for ln in self.lines if not _TABLE_RULE.match(ln)).strip("\n")
                text = clean_inline(text, self.resolve)
                text = _dedent(text)
            if text.strip() and not _BARE_MARKERS.fullmatch(text):
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


def extract_rst(lines: list[str], targets=None, path: Path | None = None) -> tuple[str, list[Block]]:
    """(title, blocks) of reST source lines; `targets` (the folder's `targets.SphinxTargets`, with the file's
    `path`) gives :ref: and :doc: their titles."""
    b = _Builder(targets.resolver(path) if targets is not None else None)
    styles: list[tuple[str, bool]] = []
    title = ""
    literal_above: int | None = None  # indent of the text that opened a literal block ("::" or a code directive)
    i = _metadata_end(lines)
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
                if directive.group(2) and directive_rule(directive.group(2)) == "code":
                    literal_above = len(directive.group(1))
                continue
            if not stripped:
                b.flush()
            else:
                b.add(i + 1, line)
                if stripped.endswith("::") and not stripped.startswith(".."):
                    # "* text::": the code is indented under the item's text, not under its marker
                    item = _ITEM.match(line)
                    literal_above = len(item.group(0)) if item else _indent(line)
                    b.flush()
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        text = clean_inline(text, b.resolve)
        title = title or text
        b.heading(styles.index(style) + 1, text)
        i += step
    b.flush()
    return title, b.blocks


def _metadata_end(lines: list[str]) -> int:
    """Index of the first line after a field list that opens the file (":orphan:", ":tocdepth: 2"): Sphinx reads
    it as the page's metadata and shows none of it."""
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or not _FIELD.match(lines[i]):
        return 0
    while i < len(lines) and (_FIELD.match(lines[i]) or (lines[i][:1].isspace() and lines[i].strip())):
        i += 1
    return i


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
        if other is None:  # "..", an empty comment: it ends what is above and takes nothing below
            return i + 1
        note = re.match(r"^\[[^\]]+\]\s+(.*)$", other or "")
        if note:  # footnote or citation: its text is prose
            b.add(i + 1, match.group(1) + "   " + note.group(1))
            return i + 1
        return body_end
    rule = directive_rule(name)
    if rule == "drop":
        return body_end
    if rule == "name":  # autodoc: the argument names an object; the body, if any, is its text
        return j
    line = directive_line(name, argument)
    if line:
        b.add(i + 1, match.group(1) + line)
        b.flush()
    return j


def scan_labels(text: str) -> tuple[str, dict[str, str]]:
    """A reST page's title and its labels, each to the rendered title of the section it stands before (labels
    lowercased, as Sphinx looks them up), by regular expressions over the text (no parse). For
    `targets.scan_targets`."""
    title = ""
    for heading in _HEADING.finditer(text):
        title = _heading_at(heading.group(0).split("\n"), 0) or ""
        if title:
            break
    labels: dict[str, str] = {}
    for label in _LABEL_LINE.finditer(text):
        at = _AFTER_LABEL.match(text, label.end()).end()  # past blank lines and the labels stacked below it
        heading = _heading_at(text[at : text.find("\n", text.find("\n", text.find("\n", at) + 1) + 1)].split("\n"), 0)
        if heading:
            labels.setdefault(" ".join(label.group(1).strip("`").lower().split()), heading)
    return title, labels


def _heading_at(lines: list[str], i: int) -> str | None:
    """The rendered title of a section heading starting at line `i` (an overline, or the title line), else None."""
    if i + 1 >= len(lines):
        return None
    line, below = lines[i], lines[i + 1]
    if _ADORN.match(line) and below.strip() and i + 2 < len(lines) and lines[i + 2].strip() == line.strip():
        return clean_inline(below.strip()) or None
    if line.strip() and not line[0].isspace() and not _ADORN.match(line) and _ADORN.match(below) \
            and len(below.strip()) >= len(line.strip()):
        return clean_inline(line.strip()) or None
    return None
