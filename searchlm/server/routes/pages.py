"""The web page, its static files and the offline API docs (/docs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
_DOCS_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
# The page and its assets only talk to this server: no inline script, nothing from elsewhere.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def router() -> APIRouter:
    """The page's routes (`/static` is mounted by the app: a router cannot mount)."""
    routes = APIRouter(include_in_schema=False)
    docs_assets = _swagger_assets()

    @routes.get("/")
    def page():
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": _PAGE_CSP,
                                                            "Cache-Control": "no-cache"})

    @routes.get("/docs")
    def docs(request: Request):
        if docs_assets is None:  # FastAPI's default page would load Swagger UI from a CDN: never fetch from outside
            return HTMLResponse(
                "<p>The interactive API docs need Swagger UI's files, from the <code>serve</code> extra: "
                "<code>pip install 'searchlm[serve]'</code>. The schema itself is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>', status_code=404,
            )
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=request.app.openapi_url, title="searchlm API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @routes.get("/docs-assets/{file}")
    def docs_asset(file: str):
        if docs_assets is None or file not in _DOCS_FILES:  # only what /docs loads
            return JSONResponse({"detail": f"no docs asset '{file[:80]}'"}, status_code=404)
        return FileResponse(docs_assets / file)

    return routes


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the `fastapi-offline` package (the `serve` extra), so /docs works offline; None
    without it (then /docs says what to install)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None
