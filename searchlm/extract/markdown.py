"""Markdown to plain-text blocks with markdown-it-py (CommonMark + tables): words, not markup.

Front matter (YAML or TOML) is never text; its `title` is the document's title.
Each top-level element (paragraph, list, code block, quote, table, HTML block) is one block whose line numbers are
the source lines markdown-it maps it to. Inline markup is rendered as a reader sees it: emphasis and link syntax
go, link and image text stay, code keeps its text, entities are decoded, inline HTML tags are dropped. Lists keep
their bullets and numbers, code blocks their lines, tables one row per line.
"""

from __future__ import annotations

import html
import re

from searchlm.records import Block

# Front matter: YAML between "---" and "---" (or YAML's "..."), or TOML between "+++" lines (Hugo). Never text.
_FRONT_MATTER = re.compile(
    r"\A(?:---[ \t]*\n(?:.*?\n)??(?:---|\.\.\.)|\+\+\+[ \t]*\n(?:.*?\n)??\+\+\+)[ \t]*(?:\n|\Z)", re.S
)
_FRONT_TITLE = re.compile(r"^title[ \t]*[:=][ \t]*(.+)$", re.M)
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.S)


def extract_markdown(text: str) -> tuple[str, list[Block]]:
    """(title, blocks) of a Markdown text whose newlines are already normalized."""
    from markdown_it import MarkdownIt

    title = ""
    offset = 0
    front = _FRONT_MATTER.match(text)
    if front:
        offset = front.group(0).count("\n")
        m = _FRONT_TITLE.search(front.group(0))
        if m:
            title = m.group(1).strip().strip("\"'")
        text = text[front.end():]
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    first_heading = ""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        end = _close(tokens, i)
        if tok.type == "heading_open":
            level, name = int(tok.tag[1]), _inline(tokens[i + 1]).strip()
            if name:
                headings = [(lv, h) for lv, h in headings if lv < level] + [(level, name)]
                first_heading = first_heading or name
                if level == 1 and not title:
                    title = name
        elif tok.map:
            body = _render(tokens[i : end + 1]).strip("\n")
            if body.strip():
                blocks.append(
                    Block(body, tuple(h for _, h in headings), tok.map[0] + 1 + offset, max(tok.map[1], tok.map[0] + 1) + offset)
                )
        i = end + 1
    return title or first_heading, blocks


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


def _render(tokens) -> str:
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
            text = _inline(tok)
            if tok.level and tokens[0].type == "table_open":
                cells.append(" ".join(text.split()))
                continue
            indent = "  " * len(lists)
            body = text.replace("\n", "\n" + indent) if lists else text
            lines.append(prefix + body if prefix else (indent + body if lists else body))
            prefix = ""
        elif t == "tr_close":
            lines.append(" | ".join(cells))
            cells = []
        elif t in ("fence", "code_block"):
            lines.append(tok.content.rstrip("\n"))
        elif t == "html_block":
            stripped = html.unescape(_TAG.sub("", tok.content)).strip()
            if stripped:
                lines.append(stripped)
    return "\n".join(lines)


def _inline(tok) -> str:
    out: list[str] = []
    for child in tok.children or []:
        t = child.type
        if t in ("text", "code_inline"):
            out.append(child.content)
        elif t in ("softbreak", "hardbreak"):
            out.append("\n")
        elif t == "image":
            out.append(child.content or "".join(c.content for c in child.children or []))
        elif t == "html_inline" and child.content.lower().startswith("<br"):
            out.append("\n")
    return "".join(out)
