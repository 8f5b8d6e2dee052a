"""Run the application until SIGTERM or SIGINT, then shut down gracefully.

Prints `collab serving on http://HOST:PORT` once listening (with the real port
when 0 was asked for): scripts and tests wait for that line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from collab.config import Settings, redact_url
from collab.gateway.app import build_app
from collab.gateway.workers import REUSE_PORT_ENV
from collab.runtime.registry import Registry

log = logging.getLogger(__name__)


async def serve(settings: Settings, registry: Registry | None = None) -> None:
    app = build_app(settings, registry)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    # A worker of `collab serve --workers N` shares its port with its siblings.
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True,
                       reuse_port=bool(os.environ.get(REUSE_PORT_ENV)))
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = _bound_address(site, settings)
    print(f"collab serving on http://{host}:{port} (store: {redact_url(settings.database_url)})",
          flush=True)
    try:
        await stop.wait()
        log.info("shutting down: closing sockets, flushing writes")
    finally:
        await runner.cleanup()
        log.info("stopped")


def _bound_address(site: web.TCPSite, settings: Settings) -> tuple[str, int]:
    server = site._server  # aiohttp keeps the asyncio Server here; it has the real port
    sockets = getattr(server, "sockets", None) or []
    for sock in sockets:
        addr = sock.getsockname()
        return settings.host, addr[1]
    return settings.host, settings.port
