"""The server's routes, one router per concern: `pages` (the web page, its assets, /docs), `info` (health and
the indexes), `search` (search and documents) and `answers` (questions, whole or streamed). Each reads what it
needs from the app's `Engines` (`request.app.state.engines`)."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, Field

from searchlm.server.engines import Engines


class ErrorResponse(BaseModel):
    detail: str = Field(..., description="One line: what failed, the value, and one fix.")


ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (400, "A value that cannot be used"), (401, "The server's bearer token is missing or wrong"),
    (403, "A cross-site request"), (404, "Unknown index or document"), (413, "Request body or question too large"),
    (414, "Query too long"), (422, "A parameter out of its bounds"),
    (503, "The answer model could not be loaded, or the question queue is full (see Retry-After)"),
)}


def engines(request: Request) -> Engines:
    """The app's loaded indexes and generator (a FastAPI dependency)."""
    return request.app.state.engines
