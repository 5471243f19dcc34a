"""Result and record types shared by the library, the CLI and the server."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(kw_only=True)
class Passage:
    """A stored passage of a document: what it says and where it is. The store's chunk rows, search hits,
    answer citations and the parts of a document view are all passages, so one `location()` serves them all."""

    chunk_id: int
    doc_id: int
    path: str  # relative to the indexed folder in the store; as shown to the user in hits and citations
    title: str = ""
    heading: str = ""
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None
    text: str = ""
    kind: str = ""  # file type: md, pdf, py, ...
    doc_kind: str = "guide"  # what the page is: guide, changelog, migration or api (searchlm.doc_kinds)
    hash: str = ""  # content hash of the chunk text (vectors and rerank scores are keyed by it)

    def location(self) -> str:
        return location(self.path, self.start_line, self.page)

    def passage_fields(self) -> dict:
        """This passage's own fields (none of a subclass's), to make another kind of passage of it."""
        return {f: getattr(self, f) for f in Passage.__dataclass_fields__}


@dataclass(kw_only=True)
class Hit(Passage):
    """A ranked search result."""

    rank: int = 0
    score: float = 0.0  # relative: fused after per-query normalization (the top hit of any query is near 1)
    explain: dict | None = None
    # Scores that mean the same in every query:
    cosine: float | None = None  # the passage's cosine to the query (MiniLM: ~0.2 unrelated, 0.5+ on topic)
    bm25: float | None = None  # its FTS5 BM25 score; 0.0 when it holds no query term
    weak: bool = False  # below the relevance floor `ask` uses to refuse: likely not about the query

    @classmethod
    def of(cls, passage: Passage, *, path: str | None = None, rank: int = 0, score: float = 0.0) -> "Hit":
        """A hit for a stored passage, its path as the user should see it."""
        return cls(**{**passage.passage_fields(), "path": passage.path if path is None else path}, rank=rank, score=score)

    def to_json(self) -> dict:
        # Not `asdict`: its deep copy of every field was a tenth of a loaded server's time per search.
        data = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "hash"}  # hash: the store's key
        if data["explain"] is None:
            del data["explain"]
        else:
            data["explain"] = dict(data["explain"])
        return data


@dataclass(kw_only=True)
class Citation(Passage):
    """Passage `n` of an answer or summary ([n] in its text)."""

    n: int

    @classmethod
    def of(cls, n: int, passage: Passage) -> "Citation":
        return cls(n=n, **passage.passage_fields())

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("n", "path", "chunk_id", "doc_id", "start_line", "end_line", "page",
                                              "heading")}


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
    notices: list[str] = field(default_factory=list)  # one line each: what the vector store measured, advice

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0


def cited_json(result) -> dict:
    """The parts an answer's and a summary's JSON share: their citations, passages, model and time."""
    return {
        "citations": [c.to_json() for c in result.citations],
        "passages": [h.to_json() for h in result.passages],
        "model": result.model,
        "seconds": round(result.seconds, 3),
    }


def location(path: str, start_line: int | None, page: int | None) -> str:
    """`path:line`, or `path#page=N` for paged documents: how hits and citations point at a passage."""
    if page is not None:
        return f"{path}#page={page}"
    if start_line is not None:
        return f"{path}:{start_line}"
    return path
