"""PDF to blocks, page by page, with pypdf. Page numbers are 1-based."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from searchlm.errors import ExtractionError
from searchlm.records import Block, ExtractedDocument


def extract_pdf(data: bytes, path: Path) -> ExtractedDocument:
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        title = ""
        try:
            meta = reader.metadata
            title = (meta.title or "").strip() if meta else ""
        except Exception:
            title = ""
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            blocks.extend(_page_blocks(text, number))
    except ExtractionError:
        raise
    except Exception as exc:  # pypdf raises many types on corrupt input
        raise ExtractionError(f"corrupt or unreadable PDF ({type(exc).__name__})") from exc
    if not title:
        for b in blocks:
            first = b.text.strip().split("\n", 1)[0].strip()
            if first:
                title = first[:120]
                break
    return ExtractedDocument(title=title or path.stem, blocks=blocks, kind="pdf")


def _page_blocks(text: str, page: int) -> list[Block]:
    """Split a page into paragraphs on blank lines; line numbers count within the page."""
    blocks, current, start = [], [], None
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines, start=1):
        if line.strip():
            start = start or i
            current.append(line.strip())
        elif current:
            blocks.append(Block(" ".join(current), (), start, i - 1, page))
            current, start = [], None
    if current:
        blocks.append(Block(" ".join(current), (), start, len(lines), page))
    return blocks
