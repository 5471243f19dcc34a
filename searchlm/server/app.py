"""`create_app(settings)`: the FastAPI app behind `searchlm serve`.

It calls the same library functions as the CLI (`Searcher.search`, `answer.ask`) and keeps their models warm:
searchers (ONNX encoder + FAISS) load once per index and the generator once per process. It serves only what
an index's SQLite store holds and the static page shipped in this package; no file on disk is ever read on a
request's behalf. Errors come back as JSON `{"detail": message}`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import sqlite3
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, Optional

from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from searchlm import __version__
from searchlm.errors import InputError, SearchlmError, ServerBusyError
from searchlm.limits import MAX_ANSWER_TOKENS, MAX_QUERY_CHARS, SQLITE_MAX_ID
from searchlm.manifest import list_indexes
from searchlm.search import DEFAULT_DENSE_WEIGHT, MAX_K, MODES, SearchOptions
from searchlm.documents import document_view
from searchlm.server.engines import ASK_RETRY_SECONDS, Engines, status_for
from searchlm.server.net import LOOPBACK
from searchlm.store import translate
from searchlm.server.guard import MAX_BODY_BYTES, Guard
from searchlm.server.stream import ask_events
from searchlm.settings import Settings

log = logging.getLogger("searchlm.server")

STATIC = Path(__file__).parent / "static"
_DOCS_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
MAX_ASK_K = 20
LOCAL_HOSTS = [f"[{h}]" if ":" in h else h for h in LOOPBACK]  # as Host headers write them
_RERANKER = re.compile(r"^[a-z][a-z-]{0,31}$")  # a reranker kind only: models are chosen at start-up, not per request
# The page and its assets only talk to this server: no inline script, nothing from elsewhere.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class ErrorResponse(BaseModel):
    detail: str = Field(..., description="One line: what failed, the value, and one fix.")


_ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (400, "A value that cannot be used"), (401, "The server's bearer token is missing or wrong"),
    (403, "A cross-site request"), (404, "Unknown index or document"), (413, "Request body or question too large"),
    (414, "Query too long"), (422, "A parameter out of its bounds"),
    (503, "The answer model could not be loaded, or the question queue is full (see Retry-After)"),
)}


class AskRequest(BaseModel):
    question: str = Field(..., max_length=MAX_QUERY_CHARS, description="The question, in your own words.")
    name: Optional[str] = Field(None, max_length=128, description="Index name (default: the server's index).")
    k: Optional[int] = Field(None, ge=1, le=MAX_ASK_K, description="How many passages the answer may use.")
    mode: Optional[Literal[MODES]] = Field(None, description="Retrieval mode for the passages.")  # type: ignore
    max_tokens: Optional[int] = Field(None, ge=1, le=MAX_ANSWER_TOKENS, description="Longest answer, in tokens.")
    temperature: Optional[float] = Field(None, ge=0.0, le=2.0, description="0 is greedy (the default).")


def create_app(
    settings: Settings,
    *,
    load_generator: bool = True,
    allowed_hosts: list[str] | None = None,
    ask_defaults: dict | None = None,
    generator=None,
    token: str | None = None,
) -> FastAPI:
    """The searchlm web app for the index `settings.name` (others in `settings.home` load on first use).

    `load_generator=False` defers loading the answer model to the first question (tests, search-only use).
    `allowed_hosts` are Host headers accepted besides the loopback names (a guard against DNS rebinding).
    `ask_defaults` are `AskOptions` values for questions that do not set them (e.g. `{"max_tokens": 64}`).
    `generator` answers instead of the one `settings.generator` names (any `Generator`: a caller's own model).
    `token`: when given, every /api/ request needs `Authorization: Bearer <token>` (required off loopback).
    """
    # FAISS's and torch's OpenMP threads busy-wait after each call by default and then starve the ONNX query
    # encoder that runs next: on 2 cores a 50k-chunk hybrid search took ~150 ms with it and ~95 ms without.
    # It only takes effect before the first OpenMP library loads, which is the case under `searchlm serve`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    engines = Engines(settings, load_generator=load_generator, ask_defaults=ask_defaults, generator=generator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(engines.warm)
        yield
        engines.close()

    docs_assets = _swagger_assets()
    app = FastAPI(
        title="searchlm", version=__version__, lifespan=lifespan, redoc_url=None, docs_url=None,
        description="Local semantic search over a folder of documents: hybrid search, cited answers.",
    )
    app.state.engines = engines
    app.add_middleware(Guard, hosts=LOCAL_HOSTS + list(allowed_hosts or []), limit=MAX_BODY_BYTES, token=token)
    private = _Scrubber(settings)

    # -- errors -------------------------------------------------------------------------------------------
    @app.exception_handler(SearchlmError)
    async def _library_error(request: Request, exc: SearchlmError):
        headers = {"Retry-After": str(ASK_RETRY_SECONDS)} if isinstance(exc, ServerBusyError) else None
        return JSONResponse({"detail": private.scrub(str(exc))}, status_code=status_for(exc), headers=headers)

    @app.exception_handler(sqlite3.DatabaseError)
    async def _database_error(request: Request, exc: sqlite3.DatabaseError):
        name = request.query_params.get("name") or settings.name
        error = translate(exc, settings.home / name / "index.db")
        if not isinstance(error, SearchlmError):
            return await _crash(request, exc)
        return await _library_error(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            field = (e.get("loc") or ("",))[-1]
            if e.get("type") == "string_too_long" and field in ("q", "question"):
                status = 414 if field == "q" else 413
                return JSONResponse({"detail": f"the {'query' if field == 'q' else 'question'} is over "
                                     f"{MAX_QUERY_CHARS} characters (shorten it)"}, status_code=status)
            if e.get("type") in ("json_invalid", "model_attributes_type", "dict_type"):
                return JSONResponse({"detail": "the request body is not a JSON object (send e.g. "
                                     '{"question": "..."} with Content-Type: application/json)'}, status_code=422)
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body", "path"))
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):  # never the message: it may name server paths
        log.exception("error on %r", request.url.path)  # %r: a decoded path may hold control characters
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    # -- page and docs ------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": _PAGE_CSP,
                                                            "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    @app.get("/docs", include_in_schema=False)
    def docs():
        if docs_assets is None:  # FastAPI's default page would load Swagger UI from a CDN: never fetch from outside
            return HTMLResponse(
                "<p>The interactive API docs need Swagger UI's files, from the <code>serve</code> extra: "
                "<code>pip install 'searchlm[serve]'</code>. The schema itself is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>', status_code=404,
            )
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title="searchlm API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/docs-assets/{file}", include_in_schema=False)
    def docs_asset(file: str):
        if docs_assets is None or file not in _DOCS_FILES:  # only what /docs loads
            return JSONResponse({"detail": f"no docs asset '{file[:80]}'"}, status_code=404)
        return FileResponse(docs_assets / file)

    # -- API ----------------------------------------------------------------------------------------------
    @app.get("/api/health", summary="Is the server up, and what is loaded")
    def health():
        return {
            "status": "ok", "version": __version__, "index": settings.name, "loaded_indexes": engines.loaded,
            "generator": {"name": settings.generator, "loaded": engines._generator is not None,
                          "error": engines.generator_error},
            "uptime_seconds": round(time.time() - engines.started, 1),
        }

    @app.get("/api/indexes", summary="The indexes in the server's index home")
    def indexes():
        loaded = set(engines.loaded)
        return {"default": settings.name, "indexes": [
            {"name": m.name, "documents": m.documents, "chunks": m.chunks, "model": m.model,
             "dimension": m.dimension, "root": Path(m.root).name, "ann": m.ann.get("type"), "updated_at": m.updated_at,
             "default": m.name == settings.name, "loaded": m.name in loaded}
            for m in list_indexes(settings.home)
        ]}

    @app.get("/api/search", responses=_ERRORS, summary="Hybrid search: the same hits as `searchlm search --json`")
    async def search(
        q: str = Query(..., max_length=MAX_QUERY_CHARS, description="What to look for."),  # empty: the library's 400
        k: int = Query(10, ge=1, le=MAX_K, description="How many results."),
        mode: Literal[MODES] = Query("hybrid", description="hybrid, dense or keyword."),  # type: ignore[valid-type]
        name: Optional[str] = Query(None, max_length=128, description="Index name (default: the server's)."),
        fusion: Literal["minmax", "rrf"] = Query("minmax", description="How hybrid fuses scores."),
        dense_weight: Optional[float] = Query(None, ge=0.0, le=1.0, description=f"Weight of dense scores in minmax fusion (default: the index's own, set by `adapt`, else {DEFAULT_DENSE_WEIGHT})."),
        path: Optional[str] = Query(None, max_length=500, description="Only this file, folder or glob (absolute or relative to the indexed folder)."),
        exclude: Optional[list[str]] = Query(None, description="Leave out these files, folders or globs (repeatable)."),
        type: Optional[str] = Query(None, max_length=200, description="Only these file types, comma-separated."),
        since: Optional[str] = Query(None, max_length=32, description="Only documents modified since YYYY-MM-DD."),
        kind: Optional[list[str]] = Query(None, description="Only these kinds of page: guide, changelog, migration, api (repeatable or comma-separated)."),
        exclude_kind: Optional[list[str]] = Query(None, description="Leave out these kinds of page (repeatable or comma-separated)."),
        rerank: Optional[str] = Query(None, max_length=32, description="Reranker kind: cross-encoder or lm."),
        rerank_depth: int = Query(20, ge=1, le=MAX_K, description="How many candidates the reranker scores."),
        rerank_weight: Optional[float] = Query(None, ge=0.0, le=1.0, description="Reranker's share of the blend (default: its tuned weight)."),
        group_by_document: bool = Query(False, description="One hit per document."),
        explain: bool = Query(False, description="Add keyword, dense and fused scores to each hit."),
        snippets: bool = Query(False, description="Add `snippet` (excerpt as [text, is_match] pieces) and `rel_path`."),
    ):
        if rerank is not None and not _RERANKER.match(rerank):
            raise InputError(
                f"rerank '{rerank}' names a model; the server takes a kind only (use rerank=cross-encoder)"
            )
        options = SearchOptions(
            k=k, mode=mode, fusion=fusion, dense_weight=dense_weight, path=path, exclude=tuple(exclude or ()),
            types=tuple(type.split(",")) if type else (), since=since, doc_kinds=tuple(kind or ()),
            exclude_doc_kinds=tuple(exclude_kind or ()), rerank=rerank, rerank_depth=rerank_depth,
            rerank_weight=rerank_weight, group_by_document=group_by_document, explain=explain,
        )
        # Plain searches join the index's search queue without a thread of their own (engines.SearchQueue).
        searcher = engines.loaded_searcher(name) or await asyncio.to_thread(engines.searcher, name)
        if options.rerank:
            hits = await asyncio.to_thread(searcher.search, q, options)
        else:
            hits = await asyncio.wrap_future(searcher.submit(q, options))
        out = [h.to_json() for h in hits]
        if snippets:
            from searchlm.snippets import snippet_spans

            root = searcher.manifest.root
            for data, hit in zip(out, hits):
                data["snippet"] = [[piece, match] for piece, match in snippet_spans(hit.text, q)]
                data["rel_path"] = os.path.relpath(os.path.abspath(hit.path), root) if root else hit.path
        return JSONResponse({"query": q, "hits": out})  # plain JSON already: skips FastAPI's jsonable_encoder

    @app.get("/api/documents/{doc_id}", responses=_ERRORS, summary="One document's stored text, one chunk marked")
    def document(
        doc_id: int = PathParam(..., ge=1, le=SQLITE_MAX_ID, description="A hit's doc_id."),
        chunk: Optional[int] = Query(None, ge=1, le=SQLITE_MAX_ID, description="A hit's chunk_id: this part is marked."),
        name: Optional[str] = Query(None, max_length=128, description="Index name (default: the server's)."),
    ):
        searcher = engines.searcher(name)
        with searcher.lease() as leased:
            return document_view(leased, doc_id, chunk).to_json()

    @app.post("/api/ask", responses=_ERRORS, summary="Answer a question from the index, with citations")
    def ask(body: AskRequest):
        _check_question(body.question)
        return engines.ask_json(body)

    @app.post("/api/ask/stream", responses=_ERRORS, summary="Server-sent events: start, token…, answer (or error)")
    async def ask_stream(body: AskRequest):
        return _stream(body)

    def _stream(body: AskRequest) -> StreamingResponse:
        _check_question(body.question)
        engines.searcher(body.name)  # an unknown index is a 404 now, not an event later
        engines.check_ask_queue()  # a full queue is a 503 now, not an error event later
        return StreamingResponse(
            ask_events(engines, body), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


class _Scrubber:
    """Takes absolute server paths (the index home, the indexed folders, the working folder) out of messages
    sent to clients: a request names an index, never a place on the server's disk."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def scrub(self, text: str) -> str:
        home = self.settings.home
        prefixes = {str(home.resolve()): "<index home>", str(home): "<index home>"}
        for m in list_indexes(home):
            if m.root:
                prefixes[m.root] = f"<folder of '{m.name}'>"
        prefixes[os.getcwd()] = "."
        for prefix in sorted(prefixes, key=len, reverse=True):
            if len(prefix) > 1 and prefix in text:
                text = text.replace(prefix, prefixes[prefix])
        return text


def _check_question(question: str) -> None:
    if not question.strip():
        raise InputError("the question is empty (type a question to ask)")


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the `fastapi-offline` package (the `serve` extra), so /docs works offline; None
    without it (then /docs says what to install)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None
