"""`create_app(settings)`: the FastAPI app behind `searchlm serve`.

It calls the same library API as the CLI (`Searcher.search`, `ask`) and keeps their models warm: searchers
(ONNX encoder + vector index) load once per index and the generator once per process (`engines.Engines`). Its routes
are routers by concern (`routes/`): the page, what is loaded, search and documents, answers. It serves only
what an index's SQLite store holds and the static page shipped in this package; no file on disk is ever read
on a request's behalf. Errors come back as JSON `{"detail": message}` (`errors.py`).
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from searchlm import Settings, __version__
from searchlm.server.engines import Engines
from searchlm.server.errors import add_error_handlers
from searchlm.server.guard import MAX_BODY_BYTES, Guard
from searchlm.server.net import LOOPBACK
from searchlm.server.routes import answers, info, pages, search

LOCAL_HOSTS = [f"[{h}]" if ":" in h else h for h in LOOPBACK]  # as Host headers write them


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
    # The vector index's and torch's OpenMP threads busy-wait after each call by default and then starve the ONNX query
    # encoder that runs next: on 2 cores a 50k-chunk hybrid search took ~150 ms with it and ~95 ms without.
    # It only takes effect before the first OpenMP library loads, which is the case under `searchlm serve`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    engines = Engines(settings, load_generator=load_generator, ask_defaults=ask_defaults, generator=generator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(engines.warm)
        yield
        engines.close()

    app = FastAPI(
        title="searchlm", version=__version__, lifespan=lifespan, redoc_url=None, docs_url=None,
        description="Local semantic search over a folder of documents: hybrid search, cited answers.",
    )
    app.state.engines = engines
    app.add_middleware(Guard, hosts=LOCAL_HOSTS + list(allowed_hosts or []), limit=MAX_BODY_BYTES, token=token)
    add_error_handlers(app, settings)
    app.include_router(pages.router())
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.include_router(info.router)
    app.include_router(search.router)
    app.include_router(answers.router)
    return app
