"""A tiny HTTP client for a running `searchlm serve` (stdlib only, so warm-mode searches stay light)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from searchlm.errors import ServerError
from searchlm.records import Hit


def remote_search(server: str, query: str, params: dict, timeout: float = 30.0) -> list[Hit]:
    query_string = urllib.parse.urlencode({"q": query, **{k: v for k, v in params.items() if v is not None}}, doseq=True)
    url = server.rstrip("/") + "/api/search?" + query_string
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("detail") or exc.reason
        except Exception:
            detail = exc.reason
        raise ServerError(f"server {server} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(
            f"cannot reach searchlm server at '{server}' ({reason}); start one with `searchlm serve` or drop --server"
        ) from None
    fields = Hit.__dataclass_fields__
    return [Hit(**{k: v for k, v in h.items() if k in fields}) for h in data.get("hits", [])]
