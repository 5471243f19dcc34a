"""A tiny HTTP client for a running `searchlm serve` (stdlib only, so warm-mode searches stay light)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from searchlm.errors import InputError, ServerError
from searchlm.records import Hit


def check_server_url(server: str) -> str:
    """`server` without a trailing slash, or an InputError when it is not an http(s)://HOST[:PORT] address."""
    try:
        parts = urllib.parse.urlsplit(server.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise InputError(f"server '{server}' is not a valid URL ({exc}); use e.g. --server http://127.0.0.1:8000") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"server '{server}' is not an http:// address (use e.g. --server http://127.0.0.1:8000)")
    return server.strip().rstrip("/")


def remote_search(server: str, query: str, params: dict, timeout: float = 30.0) -> list[Hit]:
    server = check_server_url(server)
    query_string = urllib.parse.urlencode({"q": query, **{k: v for k, v in params.items() if v is not None}}, doseq=True)
    url = server + "/api/search?" + query_string
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
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
    fields = Hit.__dataclass_fields__
    return [Hit(**{k: v for k, v in h.items() if k in fields}) for h in data.get("hits", [])]
