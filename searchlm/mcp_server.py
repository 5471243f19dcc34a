"""`searchlm mcp`: the index as Model Context Protocol tools, for coding agents and chat clients.

A stdio server built with the official `mcp` SDK (`MCPServer`, formerly FastMCP). Four tools: `search`,
`get_document`, `ask` and `list_indexes`. Nothing heavy loads at start-up: an index's encoder and vector index
load on the first tool call that searches it, the answer model on the first `ask`, and all stay loaded for the
life of the process. Library errors become tool errors (`is_error`) carrying searchlm's one-line message, so a
bad call never stops the server.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Literal

from searchlm.errors import (
    DocumentNotFoundError, IndexBusyError, IndexMismatchError, IndexNotFoundError, InputError, ModelError, SearchlmError,
)
from searchlm.limits import check_answer_tokens, check_id, check_query
from searchlm.settings import Settings

INSTRUCTIONS = (
    "searchlm searches the user's own local documents (notes, papers, code, PDFs) indexed on this machine. "
    "Use `search` to find passages about a topic or that contain given words, `get_document` to read more of a "
    "file a hit came from, `ask` for a short cited answer drawn only from those documents, and `list_indexes` "
    "to see which document collections exist."
)

Mode = Literal["hybrid", "keyword", "dense"]  # module level: the SDK reads the tools' annotations from here
Paths = Literal["absolute", "relative"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # an index is a folder directly under the home


class Tools:
    """What the tools share: one `searchlm.Index` per index name (its searcher opened on first use, then kept
    with its models loaded, until the index is dropped or replaced on disk) and a lock, since a searcher's SQLite
    connection and models serve one call at a time."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._indexes: dict[str, Any] = {}
        self._watches: dict[str, Any] = {}  # name -> identity.IndexWatch of the index opened under that name
        self._lock = threading.RLock()

    def index(self, name: str | None):
        import searchlm

        name = name or self.settings.name
        if not _NAME.match(name):
            raise IndexNotFoundError(f"index name '{name[:80]}' is not valid", "use a name that list_indexes returns")
        with self._lock:
            watch = self._watches.get(name)
            if watch is not None and watch.state() != "same":  # dropped or replaced: open it anew (or fail)
                self._indexes.pop(name).close()
                del self._watches[name]
            if name not in self._indexes:
                from searchlm import IndexWatch

                # Not `Searcher.warm()`: its many-query tuning (more threads, GPU copy) slows the first call's
                # load time, and an agent's searches come one at a time.
                index = searchlm.Index(name, settings=self.settings)
                try:
                    self._watches[name] = IndexWatch(index.searcher.index_dir)  # a missing index fails here
                except BaseException:
                    index.close()
                    raise
                self._indexes[name] = index
            return self._indexes[name]

    def close(self) -> None:
        with self._lock:
            for index in self._indexes.values():
                index.close()
            self._indexes.clear()
            self._watches.clear()

    # -- the tools, as plain functions over the library -------------------------------------------------
    def search(self, query: str, index: str | None = None, paths: str = "absolute", **params) -> dict:
        """`SearchResult.to_json` of `query`: `params` are the tool's search arguments (`SearchOptions.from_params`),
        `paths` how hits show their path (absolute, or relative to the indexed folder)."""
        from searchlm import SearchOptions

        check_query(query)
        _check_paths(paths)
        options = SearchOptions.from_params(params)
        with self._lock:
            result = self.index(index).search(query, options)
        data = result.to_json(paths)
        data["hits"] = [_hit_json(h) for h in data["hits"]]
        return data

    def get_document(self, doc_id: int | None, path: str | None, start_line: int | None, end_line: int | None,
                     index: str | None) -> dict:
        if doc_id is None and not path:
            raise InputError("give doc_id or path (both come with every search hit)")
        if doc_id is not None:
            check_id(doc_id, "doc_id")
        if start_line is not None and end_line is not None and end_line < start_line:
            raise InputError(f"end_line {end_line} is before start_line {start_line}", "give a range that ends after it starts")
        with self._lock:
            target = self.index(index)
            if doc_id is None:
                doc_id = _document_id(target.searcher, path)
            view = target.document(doc_id)
        parts = view.parts
        if start_line is not None or end_line is not None:
            lo, hi = start_line or 1, end_line or 10**12
            parts = [p for p in parts if p.start_line is None or (p.start_line <= hi and (p.end_line or p.start_line) >= lo)]
        return {
            "index": view.index, "doc_id": view.id, "path": view.path, "rel_path": view.rel_path, "title": view.title,
            "kind": view.kind,
            "start_line": parts[0].start_line if parts else None, "end_line": parts[-1].end_line if parts else None,
            "text": "\n\n".join(p.text for p in parts),
        }

    def ask(self, question: str, k: int, mode: str, max_tokens: int, index: str | None) -> dict:
        from searchlm import AskOptions

        check_query(question, "question")
        check_answer_tokens(max_tokens)
        options = AskOptions(k=k, mode=mode, max_tokens=max_tokens, generator=self.settings.generator)
        with self._lock:
            target = self.index(index)
            answer = target.ask(question, options)
        return {
            "index": target.name,
            "answer": answer.answer,
            "refused": answer.refused,
            "shape": answer.shape,
            "verdict": answer.verdict,
            "confidence": answer.confidence,
            "extractive": answer.extractive,
            "sentences": [p.to_json() for p in answer.parts],
            "citations": [c.to_json() for c in answer.citations],
            "model": answer.model,
        }

    def list_indexes(self) -> dict:
        import searchlm

        return {
            "home": str(self.settings.home),
            "default": self.settings.name,
            "indexes": [
                {"name": m.name, "folder": m.root, "documents": m.documents, "chunks": m.chunks, "model": m.model,
                 "updated_at": m.updated_at}
                for m in searchlm.list_indexes(self.settings.home)
            ],
        }


def _hit_json(hit: dict) -> dict:
    return {k: v for k, v in hit.items() if k != "explain"}  # the tool takes no explain


def _check_paths(paths: str) -> None:
    if paths not in ("absolute", "relative"):
        raise InputError(f"paths '{str(paths)[:40]}' is not absolute or relative", "use paths='absolute'")


def _document_id(searcher, path: str) -> int:
    """A document's id from its stored path: a hit's `rel_path` (relative to the indexed folder)."""
    row = searcher.store.document_by_path(path)
    if row is None:
        raise DocumentNotFoundError(
            f"document '{path}' not found in index '{searcher.settings.name}' "
            "(use a search hit's rel_path or doc_id)"
        )
    return row.id


def build_server(settings: Settings, name: str = "searchlm", tools: Tools | None = None):
    """The MCP server object for `settings` (its index home and default index); `run()` serves it on stdio."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
    from pydantic import ValidationError

    from searchlm import __version__

    class OneLineErrors(MCPServer):
        """The SDK's tool errors on one line: it reports arguments that fail the tools' schema with pydantic's
        text, one line per field and more per error, where searchlm's own errors are one line each."""

        async def call_tool(self, name, arguments, context=None):
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                if isinstance(exc, UnexpectedToolError) or "\n" not in str(exc):
                    raise
                cause = exc.__cause__
                if isinstance(cause, ValidationError):
                    detail = "; ".join(_argument_error(e) for e in cause.errors())
                else:
                    detail = " ".join(str(exc).split())
                raise ToolError(f"Error executing tool {name}: {detail}") from cause

    tools = tools or Tools(settings)
    server = OneLineErrors(name, instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    def call(fn, *args):
        try:
            return fn(*args)
        except (IndexNotFoundError, IndexMismatchError, IndexBusyError, ModelError) as exc:
            raise ToolError(exc.cli_message()) from None  # fixed by the user at a shell: say the command
        except SearchlmError as exc:
            raise ToolError(str(exc)) from None  # the fix names the tool's own arguments (mode='hybrid')

    @server.tool(description=(
        "Search the user's local documents and return the best passages, each with its file path, line range, "
        "heading, text and score. Use it first for any question about the user's own notes, papers or code, or "
        "to find where a topic or exact word appears. mode: hybrid (default: meaning and words), keyword (exact "
        "words, names, identifiers) or dense (meaning only). Filters: path (a glob over the path inside the "
        "indexed folder, e.g. 'docs/*.md'), types (file types, e.g. ['md', 'pdf'] or 'md,pdf'), since (YYYY-MM-DD, modified "
        "on or after), kinds / exclude_kinds (kinds of page: guide, changelog, migration, api; each hit has its "
        "doc_kind, and guides rank above the others at equal relevance). correct: search a misspelled word as the "
        "nearest indexed word (default true; `corrected` says what was searched). paths: absolute (default) or "
        "relative (to the indexed folder; each hit also has rel_path). index: which collection (default: the "
        "server's; see list_indexes)."
    ))
    def search(query: str, k: int = 10, mode: Mode = "hybrid", path: str | None = None,
               types: list[str] | str | None = None, since: str | None = None,
               index: str | None = None, kinds: list[str] | str | None = None,
               exclude_kinds: list[str] | str | None = None, correct: bool = True,
               paths: Paths = "absolute") -> dict[str, Any]:
        return call(lambda: tools.search(
            query, index, paths, k=k, mode=mode, path=path, types=types, since=since, kinds=kinds,
            exclude_kinds=exclude_kinds, correct=correct,
        ))

    @server.tool(description=(
        "Read a whole document from the index, or the part of it between start_line and end_line (the stored "
        "passages that overlap those lines), by the doc_id or path of a search hit. Use it after `search` when a "
        "passage is not enough context. path: a hit's rel_path (the path inside the indexed folder). Returns the "
        "text the index holds, not the file on disk."
    ))
    def get_document(doc_id: int | None = None, path: str | None = None, start_line: int | None = None,
                     end_line: int | None = None, index: str | None = None) -> dict[str, Any]:
        return call(tools.get_document, doc_id, path, start_line, end_line, index)

    @server.tool(description=(
        "Answer a question from the user's local documents with a short answer that cites its sources [1], [2] "
        "(file path and line), or refuse (refused: true) when the documents do not cover it. Slower than search "
        "(it runs a small local language model; the first call loads it); prefer `search` when you can read "
        "the passages yourself."
    ))
    def ask(question: str, k: int = 5, mode: Mode = "hybrid", max_tokens: int = 256,
            index: str | None = None) -> dict[str, Any]:
        return call(tools.ask, question, k, mode, max_tokens, index)

    @server.tool(description=(
        "List the searchable document collections (indexes) on this machine: name, indexed folder, number of "
        "documents and chunks, embedding model. Use it to choose the `index` argument of the other tools."
    ))
    def list_indexes() -> dict[str, Any]:
        return call(tools.list_indexes)

    return server


def _argument_error(error: dict) -> str:
    """One pydantic error as `argument: what is wrong`, without the value given (it may be megabytes)."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "self") or "arguments"
    return f"{where}: {' '.join(str(error.get('msg', 'invalid')).split())}"


def serve_stdio(settings: Settings, name: str = "searchlm") -> None:
    tools = Tools(settings)
    server = build_server(settings, name, tools)
    import searchlm.search.searcher  # noqa: F401  the light part of the first search (numpy, SQLite): no model, no vector index

    try:
        server.run("stdio")
    finally:
        tools.close()
