"""Questions: a whole answer, or its sentences as server-sent events as they pass their checks."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from searchlm.errors import InputError
from searchlm.limits import MAX_ANSWER_TOKENS, MAX_QUERY_CHARS
from searchlm.search.searcher import MODES
from searchlm.server.engines import Engines
from searchlm.server.routes import ERRORS, engines
from searchlm.server.stream import ask_events

MAX_ASK_K = 20

router = APIRouter()


class AskRequest(BaseModel):
    question: str = Field(..., max_length=MAX_QUERY_CHARS, description="The question, in your own words.")
    name: Optional[str] = Field(None, max_length=128, description="Index name (default: the server's index).")
    k: Optional[int] = Field(None, ge=1, le=MAX_ASK_K, description="How many passages the answer may use.")
    mode: Optional[Literal[MODES]] = Field(None, description="Retrieval mode for the passages.")  # type: ignore
    max_tokens: Optional[int] = Field(None, ge=1, le=MAX_ANSWER_TOKENS, description="Longest answer, in tokens.")
    temperature: Optional[float] = Field(None, ge=0.0, le=2.0, description="0 is greedy (the default).")


@router.post("/api/ask", responses=ERRORS, summary="Answer a question from the index, with citations")
def ask(body: AskRequest, loaded: Engines = Depends(engines)):
    _check_question(body.question)
    return loaded.ask_json(body)


@router.post("/api/ask/stream", responses=ERRORS, summary="Server-sent events: start, token…, answer (or error)")
async def ask_stream(body: AskRequest, loaded: Engines = Depends(engines)):
    _check_question(body.question)
    loaded.searcher(body.name)  # an unknown index is a 404 now, not an event later
    loaded.check_ask_queue()  # a full queue is a 503 now, not an error event later
    return StreamingResponse(
        ask_events(loaded, body), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _check_question(question: str) -> None:
    if not question.strip():
        raise InputError("the question is empty (type a question to ask)")
