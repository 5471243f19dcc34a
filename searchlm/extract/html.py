"""HTML to blocks: drops scripts, styles and navigation chrome; keeps headings and source line numbers.

Chrome is what a site puts around every page: <nav>, <header>, <footer>, elements with a navigation, banner,
search or content-info role, and the parts of generated documentation that play those roles without saying so
(Sphinx's "related" bar, "sphinxsidebar" and "footer" divs, and the "¶" `headerlink` anchor in every heading).
The page's text is read from <main>, else the element whose role is main (Sphinx's div.body), else <article>,
else <body>."""

from __future__ import annotations

import re
from pathlib import Path

from searchlm.errors import ExtractionError
from searchlm.extract.decode import decode
from searchlm.extract.limits import MAX_HTML_DEPTH
from searchlm.records import Block, ExtractedDocument

_CHROME = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template", "iframe", "button"]
_CHROME_SELECTOR = ", ".join([
    '[role="navigation"]', '[role="banner"]', '[role="contentinfo"]', '[role="search"]', '[aria-hidden="true"]',
    ".headerlink", ".sphinxsidebar", "div.related", "div.footer",
])
_SITE_SUFFIX = re.compile(r"\s+[—–|·:-]\s+\S")  # the separator between a page's title and its site's
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {"p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption", "summary"}
_SPACE = re.compile(r"[ \t\r\f\v]+")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*?(/?)>")
# Elements with no end tag, and those whose end tag pages routinely leave out: neither counts as a level.
_UNNESTED = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup", "rb", "rt",
    "rp", "!doctype",
}


def extract_html(data: bytes, path: Path) -> ExtractedDocument:
    from bs4 import BeautifulSoup, NavigableString

    text = decode(data)
    depth = _depth(text)
    if depth > MAX_HTML_DEPTH:
        raise ExtractionError(f"HTML nested over {MAX_HTML_DEPTH} elements deep (the per-file nesting limit)")
    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_CHROME):
        tag.decompose()
    for tag in soup.select(_CHROME_SELECTOR):
        tag.decompose()
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.find("article") or soup.body or soup
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    first_h1 = ""
    wanted = _HEADINGS | _BLOCKS | {"div", "section"}
    for el in root.find_all(wanted):
        if el.name in _HEADINGS:
            text = _clean(el.get_text(" ", strip=True))
            if text:
                level = int(el.name[1])
                first_h1 = first_h1 or (text if level == 1 else "")
                headings = [(lv, h) for lv, h in headings if lv < level] + [(level, text)]
                title = title or text
            continue
        if el.name in ("div", "section"):
            # Only text sitting directly in a container; its block children are visited on their own.
            text = _clean(" ".join(str(c) for c in el.children if isinstance(c, NavigableString)))
        else:
            if el.find_parent(_BLOCKS):
                continue  # a <p> inside an <li>: the outer block already holds its text
            text = el.get_text("\n" if el.name == "pre" else " ", strip=el.name != "pre")
            text = text if el.name == "pre" else _clean(text)
        if text.strip():
            line = getattr(el, "sourceline", None)
            blocks.append(
                Block(
                    text=text,
                    headings=tuple(h for _, h in headings),
                    start_line=line,
                    end_line=line + text.count("\n") if line else None,
                )
            )
    if not title and headings:
        title = headings[0][1]
    elif first_h1 and title.startswith(first_h1) and _SITE_SUFFIX.match(title[len(first_h1):]):
        title = first_h1  # "Sessions — Demo 1.0 documentation": the page's own title, less the site's name
    return ExtractedDocument(title=title or path.stem, blocks=blocks, kind="html")


def _depth(text: str) -> int:
    """How deep elements open inside one another, counted from the tags alone before any parser builds a tree
    (a regular expression over the text: ~50x cheaper than the parse it can spare)."""
    depth = deepest = 0
    for closing, name, self_closing in _TAG.findall(text):
        if self_closing or name.lower() in _UNNESTED:
            continue
        if closing:
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()
