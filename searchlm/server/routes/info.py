"""What the server holds: health (what is loaded) and the indexes in its home."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter, Depends

from searchlm import __version__, list_indexes
from searchlm.server.engines import Engines
from searchlm.server.routes import engines

router = APIRouter()


@router.get("/api/health", summary="Is the server up, and what is loaded")
def health(loaded: Engines = Depends(engines)):
    settings = loaded.settings
    return {
        "status": "ok", "version": __version__, "index": settings.name, "loaded_indexes": loaded.loaded,
        "generator": {"name": settings.generator, "loaded": loaded.generator_loaded,
                      "error": loaded.generator_error},
        "uptime_seconds": round(time.time() - loaded.started, 1),
    }


@router.get("/api/indexes", summary="The indexes in the server's index home")
def indexes(loaded: Engines = Depends(engines)):
    settings = loaded.settings
    names = set(loaded.loaded)
    return {"default": settings.name, "indexes": [
        {"name": m.name, "documents": m.documents, "chunks": m.chunks, "model": m.model,
         "dimension": m.dimension, "root": Path(m.root).name, "ann": m.ann.get("type"), "updated_at": m.updated_at,
         "default": m.name == settings.name, "loaded": m.name in names}
        for m in list_indexes(settings.home)
    ]}
