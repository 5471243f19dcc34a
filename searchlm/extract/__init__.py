"""Turn a file into an `ExtractedDocument`: a title and structural blocks with line or page numbers.

One module per format; `extract(path)` picks the extractor by file extension.
"""

from __future__ import annotations

from pathlib import Path

from searchlm.errors import ExtractionError
from searchlm.records import Block, ExtractedDocument

TEXT_KINDS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".rst": "rst"}
MARKUP_KINDS = {".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
CODE_KINDS = {
    ext: ext[1:]
    for ext in (
        ".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".c", ".h", ".cpp", ".hpp", ".cc",
        ".cs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".sql", ".r", ".lua", ".pl",
        ".toml", ".yaml", ".yml", ".ini", ".cfg",
    )
}
SUPPORTED = {**TEXT_KINDS, **MARKUP_KINDS, **CODE_KINDS}

MAX_FILE_BYTES = 50 * 1024 * 1024
# Bumped when a reader starts to extract a kind differently; an index made with an older reader re-reads those
# files once (vectors of unchanged chunk texts are reused). txt 2: underlined headings. md 2, rst 2: plain text
# instead of markup (markdown-it-py; the reST reader renders roles, links and literals). A title-only document,
# once skipped, needs no bump: skipped files are not in the index, so every run reads them again.
READER_VERSIONS = {"txt": 2, "md": 2, "rst": 2}


def kind_of(path: Path) -> str | None:
    """The document kind for a path (md, pdf, py, ...), or None when searchlm does not read it."""
    return file_kind(path.suffix)


def file_kind(name: str) -> str | None:
    """The document kind for a type a user typed (`md`, `.MD`, `htm`, `markdown`) or a file suffix, or None."""
    name = name.strip().lower().lstrip(".")
    return SUPPORTED.get("." + name) if name else None


def extract(path: Path) -> ExtractedDocument:
    """Read one file. Raises ExtractionError with a short reason when it cannot be read as text."""
    kind = kind_of(path)
    if kind is None:
        raise ExtractionError(f"unsupported file type '{path.suffix}'")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractionError(f"unreadable: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ExtractionError(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    if kind == "pdf":
        from searchlm.extract.pdf import extract_pdf

        doc = extract_pdf(data, path)
    elif kind == "docx":
        from searchlm.extract.docx import extract_docx

        doc = extract_docx(data, path)
    elif kind == "html":
        from searchlm.extract.html import extract_html

        doc = extract_html(data, path)
    else:
        from searchlm.extract.text import extract_text

        doc = extract_text(data, path, kind)
    if not any(b.text.strip() for b in doc.blocks):
        if not doc.title.strip() or doc.title == path.stem:  # the stem is the fallback title, not text
            raise ExtractionError("no text")
        # A title with no body (front matter, or a lone heading) is the document's text: half of some test
        # collections are titles only, and a user searching for a page's title expects to find it.
        doc.blocks = [Block(doc.title.strip(), (), 1, 1)]
    return doc
