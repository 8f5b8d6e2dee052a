"""Run the application until SIGTERM or SIGINT, then shut down gracefully (drain.py).

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
from collab.gateway.drain import drain
from collab.gateway.workers import REUSE_PORT_ENV
from collab.logs import ACCESS_LOG_FORMAT, announce
from collab.runtime.registry import Registry

log = logging.getLogger(__name__)

#: Exit status when the server could not start (the store unreachable): nothing was served.
EXIT_CANNOT_START = 1


async def serve(settings: Settings, registry: Registry | None = None) -> int:
    """Serve until a signal; returns the exit status."""
    app = build_app(settings, registry)
    access = ({"access_log": logging.getLogger("aiohttp.access"),
               "access_log_format": ACCESS_LOG_FORMAT} if settings.access_log
              else {"access_log": None})
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.shutdown_timeout,
                           **access)
    try:
        await runner.setup()
    except ConnectionError as exc:  # the store's own sentence says where and why
        log.critical("cannot start: %s", exc)
        return EXIT_CANNOT_START
    # A worker of `collab serve --workers N` shares its port with its siblings.
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True,
                       reuse_port=bool(os.environ.get(REUSE_PORT_ENV)))
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = _bound_address(site, settings)
    announce(f"collab serving on http://{host}:{port} "
             f"(store: {redact_url(settings.database_url)})", settings.log_format)
    await stop.wait()
    return await drain(app, runner, settings.shutdown_timeout)


def _bound_address(site: web.TCPSite, settings: Settings) -> tuple[str, int]:
    server = site._server  # aiohttp keeps the asyncio Server here; it has the real port
    sockets = getattr(server, "sockets", None) or []
    for sock in sockets:
        addr = sock.getsockname()
        return settings.host, addr[1]
    return settings.host, settings.port
