"""Search and the documents hits come from. Options reach the library through `SearchOptions.from_params`, as
from every other surface; the result is `SearchResult.to_json`, the same JSON as `searchlm search --json`."""

from __future__ import annotations

import asyncio
import re
from typing import Literal, Optional

from fastapi import APIRouter, Depends, Path as PathParam, Query, Request
from fastapi.responses import JSONResponse

from searchlm import SearchOptions
from searchlm.errors import InputError
from searchlm.limits import MAX_QUERY_CHARS, SQLITE_MAX_ID
from searchlm.search.searcher import DEFAULT_DENSE_WEIGHT, MAX_K, MODES
from searchlm.server.engines import Engines
from searchlm.server.routes import ERRORS, engines

router = APIRouter()
_RERANKER = re.compile(r"^[a-z][a-z-]{0,31}$")  # a reranker kind only: models are chosen at start-up, not per request
# Parameters of /api/search that are the server's own, not search options.
_OWN = ("q", "name", "paths", "snippets")


@router.get("/api/search", responses=ERRORS, summary="Hybrid search: the same JSON as `searchlm search --json`")
async def search(
    request: Request,
    q: str = Query(..., max_length=MAX_QUERY_CHARS, description="What to look for."),  # empty: the library's 400
    name: Optional[str] = Query(None, max_length=128, description="Index name (default: the server's)."),
    paths: Literal["absolute", "relative"] = Query("absolute", description="Hits' `path`: absolute, or relative to the indexed folder (every hit also has `rel_path`); `relative` also leaves the server's folders out of `index`."),
    snippets: bool = Query(False, description="Add `snippet` (excerpt as [text, is_match] pieces)."),
    # Declared for the schema and its bounds; read by SearchOptions.from_params from the query string.
    k: int = Query(10, ge=1, le=MAX_K, description="How many results."),
    mode: Literal[MODES] = Query("hybrid", description="hybrid, dense or keyword."),  # type: ignore[valid-type]
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
    correct: bool = Query(True, description="Search a word the index does not hold as its nearest indexed word."),
    loaded: Engines = Depends(engines),
):
    if rerank is not None and not _RERANKER.match(rerank):
        raise InputError(f"rerank '{rerank}' names a model; the server takes a kind only (use rerank=cross-encoder)")
    given = request.query_params
    options = SearchOptions.from_params({
        key: given.getlist(key) if len(given.getlist(key)) > 1 else given[key] for key in given if key not in _OWN
    })
    # Plain searches join the index's search queue without a thread of their own (engines.SearchQueue).
    pool = loaded.loaded_searcher(name) or await asyncio.to_thread(loaded.searcher, name)
    if options.rerank:
        result = await asyncio.to_thread(pool.search, q, options)
    else:
        result = await asyncio.wrap_future(pool.submit(q, options))
    data = result.to_json(paths)
    if paths == "relative" and data["index"]:  # nothing of the server's disk
        data["index"].update(home=None, folder=None)
    if snippets:
        from searchlm.search.snippets import snippet_spans

        for out, hit in zip(data["hits"], result.hits):
            out["snippet"] = [[piece, match] for piece, match in snippet_spans(hit.text, result.searched)]
    return JSONResponse(data)  # plain JSON already: skips FastAPI's jsonable_encoder


@router.get("/api/documents/{doc_id}", responses=ERRORS, summary="One document's stored text, one chunk marked")
def document(
    doc_id: int = PathParam(..., ge=1, le=SQLITE_MAX_ID, description="A hit's doc_id."),
    chunk: Optional[int] = Query(None, ge=1, le=SQLITE_MAX_ID, description="A hit's chunk_id: this part is marked."),
    name: Optional[str] = Query(None, max_length=128, description="Index name (default: the server's)."),
    loaded: Engines = Depends(engines),
):
    with loaded.searcher(name).lease() as searcher:
        return searcher.document(doc_id, chunk).to_json()
