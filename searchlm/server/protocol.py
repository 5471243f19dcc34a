"""How `searchlm serve` runs uvicorn: its settings, and an HTTP protocol that closes a connection whose request
does not arrive in time.

uvicorn's h11 protocol times out only a keep-alive connection that sat idle after a response
(`timeout_keep_alive`). A connection that sends nothing, or half a request line, or one header a minute, is kept
forever: 3,000 such connections stayed open, each holding a file descriptor and a little memory. `TimedH11Protocol`
gives every request head HEADER_TIMEOUT seconds from the moment the connection opens, or the previous response
ended, and closes the connection when it has not arrived by then. A request being answered is never cut: a long
streamed answer is not a slow request.
"""

from __future__ import annotations

import os

from uvicorn.protocols.http.h11_impl import H11Protocol, h11

HEADER_TIMEOUT = 15.0  # seconds for a request line and headers; a browser or curl sends them in one packet
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open after a response (uvicorn's default)


def header_timeout() -> float:
    """HEADER_TIMEOUT, or SEARCHLM_HEADER_TIMEOUT (seconds) where it is set: tests shorten it."""
    try:
        value = float(os.environ.get("SEARCHLM_HEADER_TIMEOUT") or HEADER_TIMEOUT)
    except ValueError:
        return HEADER_TIMEOUT
    return value if value > 0 else HEADER_TIMEOUT


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's head (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout()
        self._head_deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        # IDLE: no whole request head since the connection opened or the last response ended. Otherwise a
        # request is being read or answered, and the next response's end arms the deadline again.
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()


def uvicorn_settings(max_request_line: int) -> dict:
    """The `uvicorn.Config` settings of `searchlm serve`.

    A request line up to `max_request_line` reaches the app, which answers a query over MAX_URL_BYTES with 414
    instead of a reset connection. h11 always: with httptools installed (uvicorn[standard]) uvicorn would pick
    it, and it answers a 70 KB request line with a bare 400; it saved only ~0.7 ms a request here."""
    return {"log_level": "info", "http": TimedH11Protocol, "h11_max_incomplete_event_size": max_request_line,
            "timeout_keep_alive": KEEP_ALIVE_TIMEOUT}
