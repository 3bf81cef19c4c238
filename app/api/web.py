"""Serve the web page: ``GET /`` answers ``index.html``, ``/web/*`` the static files.

The files are in app/web/ (no build step, no CDN): the page works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def mount_web(app: FastAPI) -> None:
    """Add the page (``/``) and its assets (``/web``) to ``app``; not in the OpenAPI schema."""

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
