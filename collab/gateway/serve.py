"""Run the application until SIGTERM or SIGINT, then shut down gracefully (drain.py).

Prints `collab serving on http://HOST:PORT` once listening (with the real port
when 0 was asked for): scripts and tests wait for that line. If the store cannot be
reached or the port cannot be bound, says so in one line and exits with status 1.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from aiohttp import web

from collab.config import Settings, redact_url
from collab.eventloop import running_loop_name
from collab.gateway.addresses import ConnectionsPerAddress
from collab.gateway.app import build_app
from collab.gateway.app_keys import PENDING_AUTH
from collab.gateway.drain import drain
from collab.gateway.listener import Listener, connection_capacity, descriptor_limit
from collab.gateway.preauth import PendingAuth
from collab.gateway.sockets import SOCKETS, Sockets
from collab.gateway.workers import EXIT_CANNOT_START, REUSE_PORT_ENV
from collab.logs import ACCESS_LOG_FORMAT, announce
from collab.runtime.registry import Registry

log = logging.getLogger(__name__)

#: Allocations between two collections of the youngest generation (CPython: 700).
#: Every connection and document allocates thousands of small containers: at 700,
#: collections took 28% of the server's CPU while 2,000 sockets connected, 10-15%
#: at this (the shared harness's many-documents load, docs/operations.md).
GC_YOUNG_THRESHOLD = 7000


async def serve(settings: Settings, registry: Registry | None = None) -> int:
    """Serve until a signal; returns the exit status."""
    app = build_app(settings, registry)
    access = ({"access_log": logging.getLogger("aiohttp.access"),
               "access_log_format": ACCESS_LOG_FORMAT} if settings.access_log
              else {"access_log": None})
    sockets = app[SOCKETS] = _sockets(settings, app[PENDING_AUTH])
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.shutdown_timeout,
                           keepalive_timeout=settings.keepalive_timeout, **access)
    try:
        await runner.setup()
    except ConnectionError as exc:  # the store's own sentence says where and why
        log.critical("cannot start: %s", exc)
        return EXIT_CANNOT_START
    # A worker of `collab serve --workers N` shares its port with its siblings.
    site = Listener(runner, settings.host, settings.port, sockets,
                    reuse_port=bool(os.environ.get(REUSE_PORT_ENV)))
    try:
        await site.start()
    except OSError as exc:  # the port is taken, or the host is not one of ours
        log.critical("cannot listen on %s:%d: %s", settings.host, settings.port,
                     exc.strerror or exc)
        await runner.cleanup()
        return EXIT_CANNOT_START
    # What is loaded by now (modules, the app) lives as long as the process: frozen,
    # no collection walks it again.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    announce(f"collab serving on http://{settings.host}:{site.port} "
             f"(store: {redact_url(settings.database_url)}; event loop: {running_loop_name()})",
             settings.log_format)
    await stop.wait()
    return await drain(app, runner, settings.shutdown_timeout)


def _sockets(settings: Settings, pending: PendingAuth) -> Sockets:
    """The limits on this process's TCP connections. Behind proxies (forwarded hops) a
    connection's peer is a proxy, so addresses are counted at the WebSocket upgrade
    instead, from X-Forwarded-For (gateway/upgrade.py)."""
    per_address = settings.max_connections_per_ip if not settings.forwarded_hops else 0
    return Sockets(connection_capacity(descriptor_limit()), ConnectionsPerAddress(per_address),
                   pending, header_timeout=settings.header_timeout,
                   max_header_bytes=settings.max_header_bytes)
