"""The demo editor and chat at `/`: static files built from demo/ and committed
under collab/static/, so an installed collab serves them without Node."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent.parent / "static"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def favicon(request: web.Request) -> web.FileResponse:
    """The page links its icon; browsers and tools that ask /favicon.ico anyway get it too."""
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def add_routes(app: web.Application,
               wrap: Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]],
                              Callable[[web.Request], Awaitable[web.StreamResponse]]]
               = lambda page: page) -> None:
    """The page at `/` (through `wrap`, which may answer some requests to `/` itself:
    the Hocuspocus endpoint takes WebSocket upgrades there) and its static files."""
    app.router.add_get("/", wrap(index))
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC)
