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

    _check_expansion(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise ExtractionError(f"corrupt or unreadable DOCX ({type(exc).__name__})") from exc
    title = (document.core_properties.title or "").strip()
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    # Style names by id, looked up once: `paragraph.style` scans every style for the default of each paragraph
    # without one (7 ms a paragraph on a 3,000-style file, minutes for a large document).
    names = {s.style_id: s.name or "" for s in document.styles}
    for number, para in enumerate(document.paragraphs, start=1):
        text = para.text.strip()
        if not text:
            continue
        style_id = para._p.style  # the paragraph's own style id, None for the default (body text) style
        style = names.get(style_id, style_id or "") if style_id else ""
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


def _check_expansion(data: bytes) -> None:
    """Refuse a DOCX whose parts unzip past the limits before any parser sees them: a 125 KB file that expands
    to 30 MB of XML kept python-docx busy for 7 minutes. A part counts as XML by its content type, as python-docx
    decides what to parse, never by its name: a main part renamed `document.dat` is still parsed (it reached
    3.5 GB). Media are loaded whole but not parsed, so all parts together get a larger limit."""
    import zipfile

    from searchlm.extract.limits import MAX_EXPANDED_BYTES, MAX_EXPANDED_PARTS_BYTES

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            types = _content_types(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, KeyError) as exc:
        raise ExtractionError(f"corrupt or unreadable DOCX ({type(exc).__name__})") from None
    xml = sum(i.file_size for i in infos if _parsed(i.filename, types))
    if xml > MAX_EXPANDED_BYTES:
        raise ExtractionError(
            f"DOCX expands to {xml / 2**20:.0f} MB of XML, over the {MAX_EXPANDED_BYTES // 2**20} MB per-file limit"
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_EXPANDED_PARTS_BYTES:
        raise ExtractionError(f"DOCX expands to {total / 2**20:.0f} MB, over the "
                              f"{MAX_EXPANDED_PARTS_BYTES // 2**20} MB per-file limit")


def _content_types(archive) -> tuple[dict[str, str], dict[str, str]]:
    """([Content_Types].xml's overrides by part name, its defaults by extension), lower-cased. The file is
    checked against the XML limit before it is parsed."""
    import xml.etree.ElementTree as ET

    from searchlm.extract.limits import MAX_EXPANDED_BYTES

    info = archive.getinfo("[Content_Types].xml")
    if info.file_size > MAX_EXPANDED_BYTES:
        raise ExtractionError(f"DOCX expands to {info.file_size / 2**20:.0f} MB of XML, over the "
                              f"{MAX_EXPANDED_BYTES // 2**20} MB per-file limit")
    try:
        root = ET.fromstring(archive.read(info))
    except ET.ParseError as exc:
        raise ExtractionError(f"corrupt or unreadable DOCX (content types: {exc})") from None
    overrides, defaults = {}, {}
    for el in root:
        tag, kind = el.tag.rsplit("}", 1)[-1], el.get("ContentType", "").lower()
        if tag == "Override":
            overrides[el.get("PartName", "").lower()] = kind
        elif tag == "Default":
            defaults[el.get("Extension", "").lower()] = kind
    return overrides, defaults


def _parsed(name: str, types: tuple[dict[str, str], dict[str, str]]) -> bool:
    """Whether python-docx would parse the part as XML: its content type is XML, or unknown (counted to be safe)."""
    overrides, defaults = types
    kind = overrides.get("/" + name.lower()) or defaults.get(name.rsplit(".", 1)[-1].lower() if "." in name else "")
    return not kind or kind.endswith("xml")
