"""Result and record types shared by the library, the CLI and the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Block:
    """A structural piece of a document as extracted: a paragraph, list, code block or heading body."""

    text: str
    headings: tuple[str, ...] = ()
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None


@dataclass
class ExtractedDocument:
    title: str
    blocks: list[Block]
    kind: str  # file type without dot: md, pdf, html, ...


@dataclass
class Chunk:
    """A retrievable passage. `embed_text` carries title and heading path in front of `text`."""

    text: str
    embed_text: str
    heading: str
    start_line: int | None
    end_line: int | None
    page: int | None
    hash: str
    ordinal: int = 0


@dataclass
class Hit:
    rank: int
    score: float
    path: str
    chunk_id: int
    doc_id: int
    title: str
    heading: str
    start_line: int | None
    end_line: int | None
    page: int | None
    text: str
    explain: dict | None = None

    def location(self) -> str:
        return location(self.path, self.start_line, self.page)

    def to_json(self) -> dict:
        data = asdict(self)
        if data["explain"] is None:
            del data["explain"]
        return data


@dataclass
class IndexReport:
    """What one `index` run did."""

    name: str
    files_seen: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_total: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0


def location(path: str, start_line: int | None, page: int | None) -> str:
    """`path:line`, or `path#page=N` for paged documents: how hits and citations point at a passage."""
    if page is not None:
        return f"{path}#page={page}"
    if start_line is not None:
        return f"{path}:{start_line}"
    return path
