"""Markdown (and MyST, Sphinx's Markdown) to plain-text blocks with markdown-it-py (CommonMark + tables): words,
not markup.

Front matter (YAML or TOML) is never text; its `title` is the document's title.
Each top-level element (paragraph, list, code block, quote, table, HTML block) is one block whose line numbers are
the source lines markdown-it maps it to. Inline markup is rendered as a reader sees it: emphasis and link syntax
go, link and image text stay, code keeps its text, entities are decoded, inline HTML tags are dropped. Lists keep
their bullets and numbers, code blocks their lines, tables one row per line. Navigation is not text: HTML
<nav>, <footer>, <script> and <style> blocks, and a paragraph of nothing but links or badges ("[Prev](a.md) |
[Next](b.md)").

MyST shows what Sphinx shows, by the reST reader's rules (`rst.role_text`, `rst.directive_rule`): a role
"{meth}`~click.Context.invoke`" is "invoke" and a "{ref}" the title of the section it names; "(label)=" targets,
"%" comments, "+++" breaks and footnote marks ("[^1]") are no text; a directive fence ("```{note}" or
":::{note}") loses its options (":depth: 2" lines or a YAML block), admonitions and other content directives keep
their body (read as Markdown) with their title, code blocks their code, "{eval-rst}" (recommonmark's "eval_rst")
is read by the reST reader, and toctree, contents, include and the like vanish. A fence with an unknown name
("```{r}" in R Markdown) is code.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from searchlm.extract.rst import Resolve, directive_line, directive_rule, extract_rst, role_text
from searchlm.records import Block

# Front matter: YAML between "---" and "---" (or YAML's "..."), or TOML between "+++" lines (Hugo). Never text.
_FRONT_MATTER = re.compile(
    r"\A(?:---[ \t]*\n(?:.*?\n)??(?:---|\.\.\.)|\+\+\+[ \t]*\n(?:.*?\n)??\+\+\+)[ \t]*(?:\n|\Z)", re.S
)
_FRONT_TITLE = re.compile(r"^title[ \t]*[:=][ \t]*(.+)$", re.M)
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.S)
# HTML blocks that are a site's chrome or code, not the page's text.
_CHROME_BLOCK = re.compile(r"\s*<(nav|footer|script|style|template|noscript)\b", re.I)
# What may stand between the links of a navigation bar: separators and arrows, no words.
_NAV_GLUE = re.compile(r"[\s|·•/,–—:>»«<←→↑↓⟵⟶-]*")

# MyST. A role: "{name}" right before inline code. A directive fence's info: "{name} argument".
_ROLE_NAME = re.compile(r"\{([A-Za-z][\w.+-]*(?::[\w.+-]+)*)\}$")
_DIRECTIVE_INFO = re.compile(r"^\{([A-Za-z][\w.+-]*(?::[\w.+-]+)*)\}[ \t]*(.*)$", re.S)
_OPTION = re.compile(r"^[ \t]*:[\w.-]+:(?:[ \t].*)?$")
_TARGET = re.compile(r"^ {0,3}\(([^()\s]+)\)=[ \t]*$")
# A footnote's mark (MyST, GitHub): "CPython[^pypy]" is "CPython"; its definition "[^pypy]: On PyPy..." keeps its text.
_FOOTNOTE = re.compile(r"\[\^[\w-]+\](?::[ \t]*)?")
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+)$")
_COMMENT = re.compile(r"^ {0,3}%")
_BLOCK_BREAK = re.compile(r"^ {0,3}\+\+\+(?:[ \t].*)?$")
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
# ":::{note} Title", ":::note" (Docusaurus), "::: {.class}" (Pandoc): a fence whose body is Markdown.
_COLON_FENCE = re.compile(
    r"^([ \t]*)(:{3,})[ \t]*(?:\{([A-Za-z][\w.+-]*(?::[\w.+-]+)*)\}|([A-Za-z][\w-]*)|\{[^}]*\})?[ \t]*(.*)$"
)
# A page in MyST (a directive fence or a role): only there is a "%" line a comment and "+++" a block break.
_MYST = re.compile(r"^ {0,3}(?:`{3,}|~{3,}|:{3,})[ \t]*\{[A-Za-z]|\{[A-Za-z][\w.:+-]*\}`", re.M)
# Directives whose body is Markdown prose (Sphinx, docutils, sphinx-design, Sphinx domains); "text" directives
# by `directive_rule` that are not here are an unknown extension's, or a notebook's code cell, and stay verbatim.
_TEXT_DIRECTIVES = {
    "admonition", "attention", "caution", "danger", "error", "hint", "important", "note", "seealso", "tip", "todo",
    "warning", "versionadded", "versionchanged", "deprecated", "versionremoved", "topic", "sidebar", "margin",
    "rubric", "epigraph", "highlights", "pull-quote", "compound", "container", "div", "centered", "hlist",
    "glossary", "figure", "table", "list-table", "dropdown", "tab-set", "tab-item", "tabs", "tab", "group-tab",
    "card", "grid", "grid-item", "grid-item-card", "card-carousel", "function", "class", "method", "attribute",
    "data", "exception", "decorator", "property", "staticmethod", "classmethod", "envvar", "option", "confval",
    "describe", "object", "cmdoption", "line-block",
}
_RST = {"eval-rst", "eval_rst"}
# A page that names other sections or pages (a {ref} or {doc} role, "[](#label)", reST in it): its reader needs
# the folder's labels and titles (`targets.scan_targets`), which the indexer scans only for such pages.
MYST_REFERENCE = re.compile(rb"\{(?:[\w.+-]+:)?(?:ref|doc|any|numref)\}`|\[\]\(|<project:|eval-rst|eval_rst")


def extract_markdown(text: str, targets=None, path: Path | None = None) -> tuple[str, list[Block]]:
    """(title, blocks) of a Markdown text whose newlines are already normalized. `targets` (the folder's
    `targets.SphinxTargets`, with the file's `path`) gives MyST "{ref}" and "{doc}" roles the titles they name."""
    title = ""
    offset = 0
    front = _FRONT_MATTER.match(text)
    if front:
        offset = front.group(0).count("\n")
        m = _FRONT_TITLE.search(front.group(0))
        if m:
            title = m.group(1).strip().strip("\"'")
        text = text[front.end():]
    reader = _Reader(targets, path, myst=bool(_MYST.search(text)))
    first_heading, blocks = reader.read(text, offset, ())
    return title or first_heading, blocks


class _Reader:
    def __init__(self, targets, path: Path | None, myst: bool) -> None:
        from markdown_it import MarkdownIt

        self.targets, self.path, self.myst = targets, path, myst
        self.resolve: Resolve | None = targets.resolver(path) if targets is not None else None
        self.md = MarkdownIt("commonmark").enable("table")

    def read(self, text: str, offset: int, outer: tuple[str, ...]) -> tuple[str, list[Block]]:
        """(title: the first level-1 heading, else the first heading; blocks) of Markdown `text` whose first line
        is line `offset` + 1 of the file, under the headings `outer` (a directive's body is read with the headings
        around the directive)."""
        tokens = self.md.parse(_myst_lines(text, self.myst))
        blocks: list[Block] = []
        headings: list[tuple[int, str]] = []
        first_heading = top = ""
        path = outer
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            end = _close(tokens, i)
            if tok.type == "heading_open":
                level, name = int(tok.tag[1]), self.inline(tokens[i + 1]).strip()
                if name:
                    headings = [(lv, h) for lv, h in headings if lv < level] + [(level, name)]
                    path = outer + tuple(h for _, h in headings)
                    first_heading = first_heading or name
                    top = top or (name if level == 1 else "")
            elif tok.type == "fence" and _directive_of(tok.info) and tok.map:
                blocks.extend(self.directive(tok, offset, path))
            elif tok.map:
                body = self.render(tokens[i : end + 1], offset, path).strip("\n")
                if body.strip():
                    blocks.append(Block(body, path, tok.map[0] + 1 + offset, max(tok.map[1], tok.map[0] + 1) + offset))
            i = end + 1
        return top or first_heading, blocks

    def directive(self, tok, offset: int, path: tuple[str, ...]) -> list[Block]:
        """The blocks of a MyST directive fence, by the reST reader's rules for that directive."""
        name, argument = _directive_of(tok.info)
        argument = " ".join(argument.split())
        lines = tok.content.rstrip("\n").split("\n")
        skip = _options_end(lines)
        body = "\n".join(lines[skip:])
        first = tok.map[0] + 1 + offset  # the fence's line; its content starts on the next
        start = first + skip  # line of the body's first line, less one
        last = max(tok.map[1], tok.map[0] + 1) + offset
        base = name.split(":")[-1]
        if base in _RST:
            _, found = extract_rst(body.split("\n"), self.targets, self.path)
            return [Block(b.text, path + b.headings, b.start_line + start, b.end_line + start) for b in found]
        rule = directive_rule(name)
        if rule == "drop":
            return []
        if rule == "code" or (rule == "text" and base not in _TEXT_DIRECTIVES):
            code = body.strip("\n")
            return [Block(code, path, first, last)] if code.strip() else []
        if base == "glossary":  # terms at the margin, each over its indented definition: a paragraph each
            body = _dedent_definitions(body)
        blocks = []
        line = directive_line(name, argument) if rule == "text" else None
        if line:
            blocks.append(Block(self.inline_text(line), path, first, first))
        blocks.extend(self.read(body, start, path)[1])
        return blocks

    def render(self, tokens, offset: int, path: tuple[str, ...]) -> str:
        """Plain text of one top-level element's tokens."""
        lines: list[str] = []
        lists: list[list] = []  # per open list: [ordered, next number]
        prefix = ""
        cells: list[str] = []
        for tok in tokens:
            t = tok.type
            if t in ("bullet_list_open", "ordered_list_open"):
                start = int(tok.attrs.get("start", 1)) if tok.attrs else 1
                lists.append([t == "ordered_list_open", start])
            elif t in ("bullet_list_close", "ordered_list_close"):
                lists.pop()
            elif t == "list_item_open" and lists:
                ordered, number = lists[-1]
                indent = "  " * (len(lists) - 1)
                prefix = f"{indent}{number}. " if ordered else f"{indent}- "
                lists[-1][1] += 1
            elif t == "inline":
                if tokens[0].type == "paragraph_open" and _is_navigation(tok):
                    continue
                text = self.inline(tok)
                if tok.level and tokens[0].type == "table_open":
                    cells.append(" ".join(text.split()))
                    continue
                lines.append(self.indented(text, lists, prefix))
                prefix = ""
            elif t == "tr_close":
                lines.append(" | ".join(cells))
                cells = []
            elif t == "fence" and _directive_of(tok.info) and tok.map:
                text = "\n".join(b.text for b in self.directive(tok, offset, path))
                if text.strip():
                    lines.append(self.indented(text, lists, prefix))
                    prefix = ""
            elif t in ("fence", "code_block"):
                lines.append(tok.content.rstrip("\n"))
            elif t == "html_block" and not _CHROME_BLOCK.match(tok.content):
                stripped = html.unescape(_TAG.sub("", tok.content)).strip()
                if stripped:
                    lines.append(stripped)
        return "\n".join(lines)

    @staticmethod
    def indented(text: str, lists: list, prefix: str) -> str:
        indent = "  " * len(lists)
        body = text.replace("\n", "\n" + indent) if lists else text
        return prefix + body if prefix else (indent + body if lists else body)

    def inline(self, tok) -> str:
        return _inline(tok, self.resolve)

    def inline_text(self, text: str) -> str:
        """A line of Markdown (a directive's title) as plain text."""
        tokens = self.md.parseInline(text)
        return _inline(tokens[0], self.resolve) if tokens else text


def _directive_of(info: str) -> tuple[str, str] | None:
    """(name, argument) of a fence that is a directive ("{note} Title"; recommonmark's "eval_rst"), else None."""
    m = _DIRECTIVE_INFO.match(info)
    if m:
        return m.group(1), m.group(2)
    return ("eval-rst", "") if info.strip() == "eval_rst" else None


def _options_end(lines: list[str]) -> int:
    """Index of a directive body's first line after its options (":key: value" lines or a YAML block between
    "---" lines) and the blank line after them."""
    i = 0
    if lines and lines[0].strip() == "---":
        for j in range(1, len(lines)):
            if lines[j].strip() == "---":
                i = j + 1
                break
    else:
        while i < len(lines) and _OPTION.match(lines[i]):
            i += 1
    while i < len(lines) and not lines[i].strip() and i > 0:
        i += 1
    return i


def _dedent_definitions(body: str) -> str:
    """A glossary's body with its definitions moved to the margin (by their common indent), so that Markdown
    reads a definition's nested list or note as such, not as an indented code block."""
    lines = body.split("\n")
    cut = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip() and ln[0] in " \t"), default=0)
    return "\n".join(ln[cut:] if ln[:1] in (" ", "\t") else ln for ln in lines)


def _myst_lines(text: str, myst: bool) -> str:
    """The text with MyST's "(label)=" target lines blank (and, on a MyST page, its "%" comments and "+++"
    breaks), and colon fences (":::{note}" ... ":::") written as backtick fences, so markdown-it hands each
    directive over as one fence. Lines keep their numbers; code fences are left as they are."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            mark = fence.group(2)
            close = re.compile(rf"^[ \t]*{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            out.extend(lines[i : j + 1])
            i = j + 1
            continue
        colon = _COLON_FENCE.match(line)
        if colon and line.strip().strip(":"):
            indent, mark = colon.group(1), colon.group(2)
            name = colon.group(3) or colon.group(4) or "div"
            # closed by as many colons or more, indented less than 4 columns past the opening (deeper is content)
            close = re.compile(rf"^ {{0,{len(indent.expandtabs(4)) + 3}}}:{{{len(mark)},}}[ \t]*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            if j == len(lines):  # never closed: a line of text that starts with colons
                out.append(line)
                i += 1
                continue
            body = lines[i + 1 : j]
            ticks = "`" * max(3, 1 + max((len(m) for ln in body for m in re.findall(r"^[ \t]*(`{3,})", ln)), default=0))
            argument = re.sub(r"^\[(.*)\]$", r"\1", colon.group(5).strip())  # Docusaurus ":::tip[Title]"
            out.append(f"{indent}{ticks}{{{name}}} {argument}".rstrip())
            out.extend(body)
            out.append(f"{indent}{ticks}")
            i = j + 1
            continue
        drop = _TARGET.match(line) or (myst and (_COMMENT.match(line) or _BLOCK_BREAK.match(line)))
        out.append("" if drop else line)
        i += 1
    return "\n".join(out)


def _close(tokens, i: int) -> int:
    """Index of the token that closes the element opened at `i` (itself for a self-contained token)."""
    if tokens[i].nesting != 1:
        return i
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _is_navigation(tok) -> bool:
    """Whether a paragraph is nothing but links and badges (two or more) with separators between them: a
    navigation bar ("[Prev](a.md) | [Next](b.md)") or a row of badges, not text."""
    items, depth = 0, 0
    for child in tok.children or []:
        t = child.type
        if t == "link_open":
            depth += 1
            items += depth == 1
        elif t == "link_close":
            depth -= 1
        elif t == "image":
            items += depth == 0
        elif depth == 0 and t not in ("softbreak", "hardbreak"):
            if t != "text" or not _NAV_GLUE.fullmatch(child.content):
                return False
    return items >= 2


def _inline(tok, resolve: Resolve | None = None) -> str:
    out: list[str] = []
    link: tuple[str, int] | None = None  # the open link's href and where its text starts in `out`
    for child in tok.children or []:
        t = child.type
        if t == "text":
            out.append(_FOOTNOTE.sub("", child.content) if "[^" in child.content else child.content)
        elif t == "code_inline":
            role = _ROLE_NAME.search(out[-1]) if out else None
            if role:  # MyST: {meth}`CliRunner.invoke`
                out[-1] = out[-1][: role.start()]
                out.append(role_text(role.group(1), child.content, resolve))
            else:
                out.append(child.content)
        elif t in ("softbreak", "hardbreak"):
            out.append("\n")
        elif t == "image":
            out.append(child.content or "".join(c.content for c in child.children or []))
        elif t == "html_inline" and child.content.lower().startswith("<br"):
            out.append("\n")
        elif t == "link_open":
            link = (str(child.attrs.get("href", "")) if child.attrs else "", len(out))
        elif t == "link_close" and link:
            href, start = link
            shown = "".join(out[start:])
            if not shown.strip() or (href.startswith("project:") and shown == href):
                del out[start:]  # MyST "[](#label)", "<project:#label>": the title of what it names
                out.append(_link_text(href, resolve))
            link = None
    return "".join(out)


def _link_text(href: str, resolve: Resolve | None) -> str:
    """What a link with no text of its own shows: the section or document title it names where known, else the
    label's words; a web address as it is."""
    if re.match(r"^[a-z][a-z+.-]*://", href, re.I) or href.startswith("mailto:"):
        return href
    href = href.removeprefix("project:")
    page, _, label = href.partition("#")
    if label:
        return role_text("ref", label, resolve)
    return role_text("doc", re.sub(r"\.(md|rst|html?)$", "", page), resolve) if page else ""


def scan_labels(text: str) -> tuple[str, dict[str, str]]:
    """A MyST page's title and its labels: "(label)=" lines over a heading (blank lines and more labels may stand
    between), each to the heading's rendered text; labels lowercased, as Sphinx looks them up. For
    `targets.scan_targets`, so that a :ref: or {ref} names a MyST section."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")

    def render(heading: str) -> str:
        tokens = md.parseInline(heading.strip().rstrip("#").strip())
        return " ".join(_inline(tokens[0]).split()) if tokens else heading

    title = ""
    front = _FRONT_MATTER.match(text)
    if front:
        m = _FRONT_TITLE.search(front.group(0))
        title = m.group(1).strip().strip("\"'") if m else ""
        text = text[front.end():]
    if not title:
        m = re.search(r"^ {0,3}#[ \t]+(.+)$", text, re.M) or re.search(r"^ {0,3}#{1,6}[ \t]+(.+)$", text, re.M)
        title = render(m.group(1)) if m else ""
    labels: dict[str, str] = {}
    pending: list[str] = []
    for line in text.split("\n"):
        target = _TARGET.match(line)
        heading = _ATX.match(line)
        if target:
            pending.append(target.group(1).lower())
        elif heading and pending:
            for label in pending:
                labels.setdefault(label, render(heading.group(1)))
            pending = []
        elif line.strip():
            pending = []
    return title, labels
