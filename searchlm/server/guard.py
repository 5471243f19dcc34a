"""ASGI middleware that refuses, before any route runs, what a local server should never take in."""

from __future__ import annotations

import json

MAX_BODY_BYTES = 16 * 1024


class Guard:
    """Refuse, as JSON, requests for another Host than the allowed ones (a web page that rebinds its name to
    127.0.0.1 must not read the API) and bodies over `limit` bytes, announced or not."""

    def __init__(self, app, hosts: list[str], limit: int = MAX_BODY_BYTES):
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        host = host[: host.find("]") + 1] if host.startswith("[") else host.split(":")[0]  # drop the port
        if "*" not in self.hosts and host not in self.hosts:
            port = (scope.get("server") or (None, None))[1]
            local = f"http://127.0.0.1:{port}" if port else "http://127.0.0.1"
            return await _json(send, 400, f"host '{host[:80]}' is not served here (open {local} instead)")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body, more = b"", True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.limit:
                    return await self._refuse(send)
            replay = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive_again():
                return replay.pop() if replay else await receive()

            return await self.app(scope, receive_again, send)
        return await self.app(scope, receive, send)

    async def _refuse(self, send) -> None:
        await _json(send, 413, f"request body over {self.limit} bytes (send a shorter question)")


async def _json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
