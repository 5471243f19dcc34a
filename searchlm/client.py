"""`RemoteSearcher`: the `Searcher` interface over a running `searchlm serve` (stdlib HTTP only, so warm-mode
searches from a one-shot process stay light)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

from searchlm.closing import Closing
from searchlm.errors import InputError, ServerError
from searchlm.records import SearchResult

if TYPE_CHECKING:
    from searchlm.search.searcher import SearchOptions


def check_server_url(server: str) -> str:
    """`server` without a trailing slash, or an InputError when it is not an http(s)://HOST[:PORT] address."""
    try:
        parts = urllib.parse.urlsplit(server.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise InputError(f"server '{server}' is not a valid URL ({exc})", "use e.g. http://127.0.0.1:8000",
                         "use e.g. --server http://127.0.0.1:8000") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"server '{server}' is not an http:// address", "use e.g. http://127.0.0.1:8000",
                         "use e.g. --server http://127.0.0.1:8000")
    return server.strip().rstrip("/")


def remote_search(server: str, query: str, params: dict, timeout: float = 30.0,
                  token: str | None = None) -> SearchResult:
    """The `SearchResult` of `query` from the `searchlm serve` at `server`; `params`: `SearchOptions.to_params()`
    and the server's own (`name`)."""
    server = check_server_url(server)
    query_string = urllib.parse.urlencode({"q": query, **{k: v for k, v in params.items() if v is not None}}, doseq=True)
    request = urllib.request.Request(server + "/api/search?" + query_string)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("detail") or exc.reason
        except Exception:
            detail = exc.reason
        raise ServerError(f"server {server} answered {exc.code}: {detail}") from None
    except ValueError:  # the body is not JSON: something else listens there
        raise ServerError(
            f"'{server}' answered, but not as a searchlm server (its reply is not JSON); check the address and port"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(
            f"cannot reach searchlm server at '{server}' ({reason}); start one with `searchlm serve` or drop --server"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise ServerError(f"'{server}' answered, but not as a searchlm server (no hits in its reply); check the address")
    return SearchResult.from_json(data)


class RemoteSearcher(Closing):
    """Searches the index `name` (None: the server's own) of the `searchlm serve` at `server`, with the same
    `search(query, options)` as a local `Searcher`."""

    def __init__(self, server: str, name: str | None = None, timeout: float = 30.0, token: str | None = None):
        self.server = check_server_url(server)
        self.name = name
        self.timeout = timeout
        self.token = token  # the server's --token, sent as `Authorization: Bearer`

    # close() is Closing's: one request per search, nothing stays open

    def search(self, query: str, options: "SearchOptions | None" = None, **kwargs) -> SearchResult:
        """The server's `SearchResult` for `query`: the same as a local `Searcher.search` on its index."""
        from searchlm.search.searcher import SearchOptions

        options = options or SearchOptions(**kwargs)  # validated by the server, which answers 4xx with its reason
        params = {**options.to_params(), "name": self.name}
        return remote_search(self.server, query, params, self.timeout, self.token)
