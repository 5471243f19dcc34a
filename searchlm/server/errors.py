"""How errors leave the server: library errors as `{"detail": message}` with their HTTP status (server paths
taken out), damaged SQLite files as the library's errors, invalid parameters on one line, anything else as a
500 that names only the exception's type."""

from __future__ import annotations

import logging
import os
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from searchlm import SearchlmError, ServerBusyError, Settings, list_indexes
from searchlm.limits import MAX_QUERY_CHARS
from searchlm.server.engines import ASK_RETRY_SECONDS, status_for

log = logging.getLogger("searchlm.server")


def add_error_handlers(app: FastAPI, settings: Settings) -> None:
    private = Scrubber(settings)

    @app.exception_handler(SearchlmError)
    async def _library_error(request: Request, exc: SearchlmError):
        headers = {"Retry-After": str(ASK_RETRY_SECONDS)} if isinstance(exc, ServerBusyError) else None
        return JSONResponse({"detail": private.scrub(str(exc))}, status_code=status_for(exc), headers=headers)

    @app.exception_handler(sqlite3.DatabaseError)
    async def _database_error(request: Request, exc: sqlite3.DatabaseError):
        from searchlm.indexing.db_errors import translate

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


class Scrubber:
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
