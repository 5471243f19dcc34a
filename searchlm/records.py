"""Result and record types shared by the library, the CLI and the server."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# How a surface shows a passage's path: the full path, the path inside the indexed folder (as stored), or relative
# to the working folder when the file is under it (a command line). Computed only when shown (`shown_path`).
PATH_STYLES = ("absolute", "relative", "cwd")


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
    path: str  # relative to the indexed folder, as stored; `shown_path` makes the path a surface shows
    title: str = ""
    heading: str = ""
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None
    text: str = ""
    kind: str = ""  # file type: md, pdf, py, ...
    doc_kind: str = "guide"  # what the page is: guide, changelog, migration or api (searchlm.indexing.doc_kinds)
    hash: str = ""  # content hash of the chunk text (vectors and rerank scores are keyed by it)
    folder: str = ""  # the indexed folder `path` is inside (the index's root; "" where a store row does not say)

    @property
    def full_path(self) -> str:
        """The file's absolute path: the indexed folder joined with the stored path."""
        return str(Path(self.folder) / self.path) if self.folder else self.path

    def location(self, paths: str = "cwd") -> str:
        """`path:line` or `path#page=N`, the path in the style `paths` (see PATH_STYLES; by default from the
        working folder, as a command line shows it)."""
        return location(shown_path(self, paths), self.start_line, self.page)

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
    bm25: float | None = None  # its BM25 score from the keyword index; 0.0 when it holds no query term
    weak: bool = False  # below the relevance floor `ask` uses to refuse: likely not about the query

    @classmethod
    def of(cls, passage: Passage, *, folder: str | None = None, rank: int = 0, score: float = 0.0) -> "Hit":
        """A hit for a stored passage of the index whose indexed folder is `folder`."""
        fields = passage.passage_fields()
        if folder is not None:
            fields["folder"] = folder
        return cls(**fields, rank=rank, score=score)

    def to_json(self, paths: str = "absolute") -> dict:
        """The hit as JSON: `path` shown in the style `paths` (PATH_STYLES), `rel_path` as stored. The indexed
        folder is the result's (`SearchResult.to_json`'s `index.folder`), not repeated per hit."""
        # Not `asdict`: its deep copy of every field was a tenth of a loaded server's time per search.
        data = {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in _HIT_PRIVATE}
        data["path"] = shown_path(self, paths)
        data["rel_path"] = self.path
        if data["explain"] is None:
            del data["explain"]
        else:
            data["explain"] = dict(data["explain"])
        return data


_HIT_PRIVATE = ("hash", "folder")  # hash: the store's key; folder: once per result


@dataclass(kw_only=True)
class Citation(Passage):
    """Passage `n` of an answer or summary ([n] in its text)."""

    n: int

    @classmethod
    def of(cls, n: int, passage: Passage) -> "Citation":
        return cls(n=n, **passage.passage_fields())

    def to_json(self, paths: str = "absolute") -> dict:
        data = {k: getattr(self, k) for k in ("n", "path", "chunk_id", "doc_id", "start_line", "end_line", "page",
                                              "heading")}
        data["path"] = shown_path(self, paths)
        data["rel_path"] = self.path
        return data


@dataclass(frozen=True)
class IndexRef:
    """Which index answered: its name, its index home and the folder it indexes."""

    name: str
    home: str = ""
    folder: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "home": self.home, "folder": self.folder}


@dataclass
class SearchResult:
    """What one search found: the hits, the query as searched when a misspelling was corrected (`corrected`),
    why the filters left nothing when they did (`filtered`), the index that answered (`answered_by`; "index" in
    its JSON), and how long each step took (`timings`, seconds). It iterates, indexes, counts and compares like its
    list of hits, so code written when a search returned that list reads as before."""

    query: str
    hits: list[Hit] = field(default_factory=list)
    corrected: str | None = None
    filtered: str | None = None
    answered_by: IndexRef | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, item):
        return self.hits[item]

    def __bool__(self) -> bool:
        return bool(self.hits)

    def index(self, hit: Hit, *args) -> int:
        """Where `hit` is among the hits, as `list.index` says."""
        return self.hits.index(hit, *args)

    def __eq__(self, other) -> bool:
        """Equal to a list of the same hits (as search results were compared before they were results), or to a
        result of the same search; timings aside."""
        if isinstance(other, list):
            return self.hits == other
        if isinstance(other, SearchResult):
            return (self.query, self.hits, self.corrected, self.filtered, self.answered_by) == (
                other.query, other.hits, other.corrected, other.filtered, other.answered_by)
        return NotImplemented

    __hash__ = None  # mutable, like the list it stands for

    @property
    def searched(self) -> str:
        """The query as it was searched: the correction when there is one."""
        return self.corrected or self.query

    def to_json(self, paths: str = "absolute") -> dict:
        """The JSON every surface gives for a search (`search --json`, `/api/search`, MCP `search`): the same
        keys, present even when empty (null), each hit's path in the style `paths` (PATH_STYLES)."""
        return {
            "query": self.query,
            "corrected": self.corrected,
            "filtered": self.filtered or None,
            "index": self.answered_by.to_json() if self.answered_by else None,
            "hits": [h.to_json(paths) for h in self.hits],
            "timings": {k: round(v * 1000, 3) for k, v in self.timings.items()},  # milliseconds
        }

    @classmethod
    def from_json(cls, data: dict) -> "SearchResult":
        """A result read back from `to_json`'s JSON (a `RemoteSearcher`): hits keep their stored `rel_path` as
        `path` and the index's folder, so they show the same way as local ones."""
        index = data.get("index") or None
        folder = (index or {}).get("folder") or ""
        fields = Hit.__dataclass_fields__
        hits = [
            Hit(**{k: v for k, v in h.items() if k in fields and k not in ("path", "folder")},
                path=h.get("rel_path") or h.get("path") or "", folder=folder)
            for h in data.get("hits") or []
        ]
        return cls(
            query=data.get("query") or "", hits=hits, corrected=data.get("corrected"),
            filtered=data.get("filtered"), answered_by=IndexRef(**{k: index.get(k) or "" for k in ("name", "home", "folder")})
            if index else None,
            timings={k: v / 1000 for k, v in (data.get("timings") or {}).items() if isinstance(v, (int, float))},
        )


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


def cited_json(result, paths: str = "absolute") -> dict:
    """The parts an answer's and a summary's JSON share: their citations, passages, model and time."""
    return {
        "citations": [c.to_json(paths) for c in result.citations],
        "passages": [h.to_json(paths) for h in result.passages],
        "model": result.model,
        "seconds": round(result.seconds, 3),
    }


def shown_path(passage: Passage, paths: str = "absolute") -> str:
    """The path of `passage` as a surface shows it (PATH_STYLES): `absolute`, `relative` (to the indexed folder:
    the stored path) or `cwd` (relative to the working folder when the file is under it, else absolute)."""
    if paths == "relative" or not passage.folder:
        return passage.path
    full = passage.full_path
    if paths == "cwd":
        here = os.getcwd()
        try:
            if Path(full).is_relative_to(here):
                return os.path.relpath(full, here)
        except ValueError:
            pass
    return full


def location(path: str, start_line: int | None, page: int | None) -> str:
    """`path:line`, or `path#page=N` for paged documents: how hits and citations point at a passage."""
    if page is not None:
        return f"{path}#page={page}"
    if start_line is not None:
        return f"{path}:{start_line}"
    return path
