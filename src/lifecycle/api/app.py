"""The FastAPI application, built around one :class:`Runtime`."""

from __future__ import annotations

from fastapi import FastAPI

from lifecycle import __version__
from lifecycle.api import duplicates, errors, imports, ingest, links, read, segments
from lifecycle.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="lifecycle", version=__version__)
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(ingest.router)
    app.include_router(read.router)
    app.include_router(links.router)
    app.include_router(duplicates.router)
    app.include_router(imports.router)
    app.include_router(segments.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
