"""Graceful shutdown (SIGTERM, SIGINT): every step in order, against one deadline.

1. Refuse new work at once: `/readyz` answers 503 `draining`, WebSocket upgrades
   and requests that would load an actor answer 503 `shutting_down`. The port
   stays open meanwhile, so load balancers and clients get that clear answer
   rather than a refused connection.
2. Close every WebSocket with 1012 (service restart): clients reconnect, to
   another process or to this service once it is back.
3. Stop every actor: each handles what is already in its mailbox, saves, and
   documents compact; every write is submitted.
4. Close the port, let the remaining HTTP requests finish (a socket whose
   handshake was under way at step 2 is closed with 1012 now), drain group
   commit, close the store.

All of it must fit in COLLAB_SHUTDOWN_TIMEOUT (under the 30 s after which
Heroku and Kubernetes send SIGKILL). Past it the process exits at once with
status 1, saying so: a deliberate exit beats a SIGKILL in the middle of a write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from aiohttp import web

from collab.errors import CloseCode
from collab.gateway.app_keys import CONNECTIONS, SESSIONS, SYSTEM

log = logging.getLogger(__name__)

#: Exit status when the shutdown missed its deadline (writes may be lost).
EXIT_SHUTDOWN_TIMEOUT = 1
#: Seconds to wait, after the sockets are closed, for the tasks that served them.
SESSIONS_ENDING = 5.0


async def close_connections(app: web.Application) -> None:
    """Close every open WebSocket with 1012 and wait (bounded by the close
    handshake timeout) for the peers to answer, then for the tasks serving them
    to finish (each tells its actors that its socket left)."""
    connections = list(app[CONNECTIONS])
    if connections:
        log.info("closing %d connections (1012 service restart)", len(connections))
        await asyncio.gather(
            *(conn.aclose(CloseCode.SERVICE_RESTART, "server restarting") for conn in connections),
            return_exceptions=True)
    sessions = list(app[SESSIONS])
    if sessions:
        await asyncio.wait(sessions, timeout=SESSIONS_ENDING)


async def drain(app: web.Application, runner: web.AppRunner, limit: float) -> int:
    """Shut `app` (served by `runner`) down gracefully within `limit` seconds.
    Returns the exit status, 0; past the deadline the process exits with
    EXIT_SHUTDOWN_TIMEOUT without returning."""
    started = time.monotonic()
    system = app[SYSTEM]
    system.refuse_new()
    log.info("shutting down: refusing new connections, closing sockets, flushing writes "
             "(at most %g s)", limit)
    try:
        async with asyncio.timeout(limit):
            await close_connections(app)
            await system.stop_all("shutdown")
            await runner.cleanup()
    except TimeoutError:
        _give_up(limit, system.committer.pending)
    log.info("stopped in %.1f s", time.monotonic() - started)
    return 0


def _give_up(limit: float, pending_ops: int) -> None:
    log.error("shutdown did not finish within %g s (COLLAB_SHUTDOWN_TIMEOUT); exiting now "
              "with %d write operations not committed", limit, pending_ops)
    logging.shutdown()
    sys.stdout.flush()
    # Not a return: the store driver's thread (aiosqlite) and tasks stuck on an
    # unreachable store would keep the interpreter alive past the deadline.
    os._exit(EXIT_SHUTDOWN_TIMEOUT)
