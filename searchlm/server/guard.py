"""ASGI middleware that refuses, before any route runs, what a local server should never take in:

- a Host that is not this server's (a web page that rebinds its name to 127.0.0.1 must not read the API);
- a cross-site request to the API (403): an `Origin` other than the server's own, or a browser's
  `Sec-Fetch-Site: cross-site|same-site`, so no page the user visits can load models, write caches or stream;
- without the bearer token, when the server has one (401) — required when it listens beyond loopback;
- a request line over MAX_URL_BYTES (414) or a body over `limit` bytes (413), announced or not.
"""

from __future__ import annotations

import hmac
import json
import os
import socket

MAX_BODY_BYTES = 16 * 1024
MAX_URL_BYTES = 8 * 1024
MAX_REQUEST_LINE = 4 * 1024 * 1024  # what uvicorn reads before the app can answer 414 (else: a reset)
WILDCARDS = ("0.0.0.0", "::", "")


def require_token(host: str, token: str | None) -> None:
    """An InputError unless a server bound beyond loopback has a token to ask for."""
    from searchlm.errors import InputError
    from searchlm.server.net import LOOPBACK

    if host not in LOOPBACK and not token:
        raise InputError(
            f"--host {host} lets other machines reach the API, which then needs a token: add --token-file FILE "
            "holding one, or set SEARCHLM_TOKEN (clients send `Authorization: Bearer TOKEN`), or keep --host 127.0.0.1"
        )
    if token is not None and len(token) < 8:
        raise InputError("the token is shorter than 8 characters (use a long random one, e.g. `openssl rand -hex 16`)")


def host_names(host: str) -> list[str]:
    """The Host headers a server bound to `host` answers besides the loopback names: the bound address, or for a
    wildcard bind this machine's names and addresses; plus SEARCHLM_ALLOWED_HOSTS (comma-separated)."""
    from searchlm.server.net import LOOPBACK

    extra = [h.strip() for h in os.environ.get("SEARCHLM_ALLOWED_HOSTS", "").split(",") if h.strip()]
    if host in LOOPBACK:
        return extra
    if host not in WILDCARDS:
        return [host, *extra]
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(info[4][0] for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    try:  # the address of the default route (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            names.add(probe.getsockname()[0])
    except OSError:
        pass
    return sorted(f"[{n}]" if ":" in n else n for n in names if n) + extra


class Guard:
    def __init__(self, app, hosts: list[str], limit: int = MAX_BODY_BYTES, token: str | None = None):
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.limit = limit
        self.token = token.encode() if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        raw_host = headers.get(b"host", b"").decode("latin-1").lower()
        host = raw_host[: raw_host.find("]") + 1] if raw_host.startswith("[") else raw_host.split(":")[0]  # drop the port
        if host not in self.hosts:
            port = (scope.get("server") or (None, None))[1]
            local = f"http://127.0.0.1:{port}" if port else "http://127.0.0.1"
            return await _json(send, 400, f"host '{host[:80]}' is not served here (open {local} instead)")
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
            return await _json(send, 414, f"request URL over {MAX_URL_BYTES} bytes (shorten the query; "
                                          "a question can also be POSTed to /api/ask)")
        if scope["path"].startswith("/api/"):
            refused = self._cross_site(scope, headers, raw_host)
            if refused:
                return await _json(send, 403, refused)
            if self.token is not None and not self._authorized(headers):
                return await _json(send, 401, "this server needs `Authorization: Bearer TOKEN` (the --token it was "
                                              "started with); in a browser open /#token=TOKEN once",
                                   [(b"www-authenticate", b'Bearer realm="searchlm"')])
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

    def _cross_site(self, scope, headers, raw_host: str) -> str | None:
        """Why a request is refused as coming from another site, or None. Browsers send `Origin` on every POST
        and cross-origin fetch, and `Sec-Fetch-Site` on every request; tools (curl, the CLI) send neither."""
        origin = headers.get(b"origin")
        if origin is not None:
            own = f"{scope.get('scheme', 'http')}://{raw_host}".encode("latin-1")
            if origin.lower() != own:
                shown = origin.decode("latin-1")[:80]
                return f"cross-site request from '{shown}' refused (the API answers only its own page and local tools)"
        site = headers.get(b"sec-fetch-site", b"").lower()
        if site in (b"cross-site", b"same-site"):
            return "cross-site request refused (the API answers only its own page and local tools)"
        return None

    def _authorized(self, headers) -> bool:
        given = headers.get(b"authorization", b"")
        scheme, _, value = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), self.token)

    async def _refuse(self, send) -> None:
        await _json(send, 413, f"request body over {self.limit} bytes (send a shorter question)")


async def _json(send, status: int, detail: str, extra_headers=()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra_headers]})
    await send({"type": "http.response.body", "body": body})
