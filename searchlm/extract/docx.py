"""DOCX to blocks with python-docx: headings from "Heading N"/"Title" styles; a block's line is its paragraph number."""

from __future__ import annotations

import io
import re
from pathlib import Path

from searchlm.errors import ExtractionError
from searchlm.records import Block, ExtractedDocument

_HEADING = re.compile(r"^heading\s*(\d)$", re.I)


def extract_docx(data: bytes, path: Path) -> ExtractedDocument:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise ExtractionError(f"corrupt or unreadable DOCX ({type(exc).__name__})") from exc
    title = (document.core_properties.title or "").strip()
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for number, para in enumerate(document.paragraphs, start=1):
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        m = _HEADING.match(style)
        if m or style.lower() == "title":
            level = int(m.group(1)) if m else 0
            headings = [(lv, h) for lv, h in headings if lv < level] + [(level, text)]
            title = title or text
            continue
        blocks.append(Block(text, tuple(h for _, h in headings), number, number))
    for table in document.tables:
        for row in table.rows:
            cells = " | ".join(c.text.strip() for c in row.cells if c.text.strip())
            if cells:
                blocks.append(Block(cells, tuple(h for _, h in headings)))
    return ExtractedDocument(title=title or path.stem, blocks=blocks, kind="docx")
