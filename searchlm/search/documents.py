"""One stored document as the web page shows it: rebuilt from its chunks in SQLite, never read from disk.

The store keeps chunk texts, not files, so a document view is the sequence of its chunks in order, with the
overlap that the chunker repeats between windows of one long block cut off again. The server serves nothing
but what an index holds: a deleted, moved or private file next to the indexed folder is never read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchlm.errors import DocumentNotFoundError
from searchlm.records import Passage


@dataclass(kw_only=True)
class DocumentPart(Passage):
    """One passage of the document, its overlap with the previous one cut off; `marked` when it was asked for."""

    marked: bool = False

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("chunk_id", "heading", "start_line", "end_line", "page", "text", "marked")}


@dataclass
class DocumentView:
    id: int
    index: str
    path: str  # absolute: the indexed folder joined with rel_path
    rel_path: str  # relative to the indexed folder, as stored
    title: str
    kind: str
    parts: list[DocumentPart] = field(default_factory=list)
    marked_chunk: int | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.parts)

    def to_json(self) -> dict:
        data = asdict(self)
        data["parts"] = [p.to_json() for p in self.parts]
        data["text"] = self.text
        return data


def document_view(searcher, doc_id: int, chunk_id: int | None = None) -> DocumentView:
    """The stored text of document `doc_id` in `searcher`'s index, with chunk `chunk_id` marked when given."""
    from searchlm.limits import check_id

    check_id(doc_id, "doc_id")
    if chunk_id is not None:
        check_id(chunk_id, "chunk_id")
    row = searcher.store.document(doc_id)
    if row is None:
        raise DocumentNotFoundError(
            f"document {doc_id} not found in index '{searcher.settings.name}' (use an id from a search hit's doc_id)"
        )
    chunks = searcher.store.chunks_of_document(doc_id)
    if chunk_id is not None and not any(c.chunk_id == chunk_id for c in chunks):
        raise DocumentNotFoundError(
            f"chunk {chunk_id} is not part of document {doc_id} in index '{searcher.settings.name}'"
            " (use a hit's chunk_id together with its doc_id)"
        )
    parts: list[DocumentPart] = []
    previous = ""
    for c in chunks:
        text = _drop_overlap(previous, c.text)
        previous = c.text
        parts.append(DocumentPart(**{**c.passage_fields(), "text": text},
                                  marked=c.chunk_id == chunk_id))
    return DocumentView(
        id=row.id, index=searcher.settings.name, path=str(Path(searcher.manifest.root) / row.path) if searcher.manifest.root else row.path,
        rel_path=row.path,
        title=row.title, kind=row.kind, parts=parts, marked_chunk=chunk_id,
    )


def _drop_overlap(previous: str, text: str, probe: int = 48) -> str:
    """`text` without the words it repeats from the end of `previous` (the chunker's window overlap)."""
    if not previous or len(text) < probe:
        return text
    at = previous.rfind(text[:probe])
    while at > 0:
        tail = previous[at:]
        if text.startswith(tail):
            rest = text[len(tail):].lstrip()
            return rest if rest else text
        at = previous.rfind(text[:probe], 0, at + probe - 1)
    return text
