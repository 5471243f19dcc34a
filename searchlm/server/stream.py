"""Server-sent events for `/api/ask/stream`: `ask` runs in a worker thread and its tokens become events."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from searchlm.errors import SearchlmError
from searchlm.server.engines import Engines, status_for

log = logging.getLogger("searchlm.server")


def _sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


class _Cancelled(Exception):
    """Raised inside the generation thread when the client has gone away."""


async def ask_events(engines: Engines, body):
    """Run `ask` in a worker thread; the answer text it streams, already checked, flows through a queue into
    `token` events (a sentence each, once it passes the check), then one `answer` event carries the whole Answer
    (citations included): the tokens add up to its text. A client that leaves stops the generation."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    gone = threading.Event()

    def push(item) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def heartbeat() -> None:  # as the model writes, shown or not: a sentence may be left out, or still growing
        if gone.is_set():
            raise _Cancelled()

    def on_token(text: str) -> None:
        heartbeat()
        push(("token", {"text": text}))

    def work() -> None:
        try:
            push(("answer", engines.ask_json(body, on_token, heartbeat)))
        except _Cancelled:
            engines.cancelled += 1
        except SearchlmError as exc:
            push(("error", {"detail": str(exc), "status": status_for(exc)}))
        except Exception as exc:  # reported to the client as an event: the response has already started
            log.exception("ask failed")
            push(("error", {"detail": f"internal error ({type(exc).__name__}); see the server log", "status": 500}))
        finally:
            push(None)

    worker = threading.Thread(target=work, name="searchlm-ask", daemon=True)
    try:
        yield _sse("start", {"question": body.question})
        worker.start()
        while (item := await queue.get()) is not None:
            yield _sse(*item)
    finally:
        gone.set()
