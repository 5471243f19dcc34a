"""`searchlm serve --workers N`: N server processes on one port.

One process runs the Python side of every request under one GIL, while its query encoder runs beside it; on 2
cores a second process served a burst of 200 concurrent searches with p95 ~1.7 s instead of ~2.6 s (each process
batches its own queries). On Linux each worker listens on a socket of its own on the port (SO_REUSEPORT, see
`net.WorkerSocket`), so the kernel spreads connections evenly; elsewhere they share one socket and the first
worker awake takes most of a burst. Each worker builds its own app with `create_app`, so each loads its own models:
the memory of the query encoder, and of the answer model unless `--lazy`, is paid once per worker, and each
worker answers one question at a time.

uvicorn starts workers with `spawn`, so a worker cannot be handed the app: it imports `app_from_environment`,
which rebuilds it from what `serve` put in the environment.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from searchlm.settings import Settings

ENVIRONMENT = "SEARCHLM_SERVE_WORKER"  # JSON: the settings and create_app options of every worker


def default_workers() -> int:
    """Two processes where there are two cores or more: the 200-search target on 2 cores; more would each load
    their own models for little more speed there."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def app_from_environment():
    """The app of one worker process (uvicorn calls this factory in each)."""
    from searchlm.server.app import create_app

    data = json.loads(os.environ[ENVIRONMENT])
    values = data["settings"]
    values["home"] = Path(values["home"])
    return create_app(Settings(**values), **data["options"])


def run(settings: Settings, sock, workers: int, config: dict, announce=None, **options) -> None:
    """Serve on `sock`: in this process when `workers` is 1, else in `workers` spawned processes that each call
    `create_app(settings, **options)`. `config` is passed to `uvicorn.Config`; `announce()` is called once the
    index has opened, before serving (a missing or damaged index fails first, in this process)."""
    import uvicorn

    if workers <= 1:
        from searchlm.server.app import create_app

        app = create_app(settings, **options)
        if announce:
            announce()
        uvicorn.Server(uvicorn.Config(app, **config)).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    from searchlm.server.engines import Engines

    Engines(settings, load_generator=False).close()
    if announce:
        announce()
    values = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}
    os.environ[ENVIRONMENT] = json.dumps({"settings": values, "options": options})
    worker_config = uvicorn.Config(f"{__name__}:app_from_environment", factory=True, workers=workers, **config)
    Multiprocess(worker_config, sockets=[sock]).run()
