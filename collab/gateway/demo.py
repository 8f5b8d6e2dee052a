"""The demo pages: the CodeMirror editor and chat at `/`, the Tiptap editor at
`/tiptap`; static files built from demo/ and committed under collab/static/, so
an installed collab serves them without Node."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent.parent / "static"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def tiptap(request: web.Request) -> web.FileResponse:
    """The Tiptap page, over @hocuspocus/provider on the Hocuspocus endpoint at `/`."""
    return web.FileResponse(STATIC / "tiptap.html", headers={"Cache-Control": "no-cache"})


async def favicon(request: web.Request) -> web.FileResponse:
    """The page links its icon; browsers and tools that ask /favicon.ico anyway get it too."""
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def add_routes(app: web.Application,
               wrap: Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]],
                              Callable[[web.Request], Awaitable[web.StreamResponse]]]
               = lambda page: page) -> None:
    """The pages at `/` (through `wrap`, which may answer some requests to `/` itself:
    the Hocuspocus endpoint takes WebSocket upgrades there) and `/tiptap`, and their
    static files."""
    app.router.add_get("/", wrap(index))
    app.router.add_get("/tiptap", tiptap)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC)
