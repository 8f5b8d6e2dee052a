"""Upgrading an HTTP request to a WebSocket, the same way for `/yjs` and `/ws`.

Refuses with 503 while the server drains, with 403 for an Origin off the
allowlist, with 401 without an acceptable token and with 403 when the caller's
check refuses the principal; sets the frame size limit, the keep-alive ping and
the close-handshake bound from the settings; registers the connection so
shutdown can close it with 1012; closes it with 4401 when its token expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from aiohttp import web

from collab.auth import Principal
from collab.errors import CloseCode, ShuttingDown
from collab.gateway.connection import Connection
from collab.gateway.keys import CONNECTIONS, GATEKEEPER, SETTINGS, SYSTEM
from collab.gateway.traffic import EndpointTraffic

log = logging.getLogger(__name__)

#: Seconds to wait for a peer's answer to our close frame before dropping the
#: TCP connection; bounds how long a shutdown can be held up by silent peers.
CLOSE_HANDSHAKE_TIMEOUT = 5.0

C = TypeVar("C", bound=Connection)


@asynccontextmanager
async def websocket(request: web.Request,
                    make: Callable[[web.WebSocketResponse, web.Request, int, EndpointTraffic], C],
                    what: str, traffic: EndpointTraffic,
                    authorize: Callable[[Principal], None] | None = None) -> AsyncIterator[C]:
    """Upgrade `request` and yield the connection `make` builds, counting its frames in
    `traffic`; unregisters it on exit. `authorize` may raise Forbidden (a 403 before
    the upgrade) after the token is verified; `conn.principal` is who it admitted."""
    settings = request.app[SETTINGS]
    if request.app[SYSTEM].closing:
        raise ShuttingDown("the server is shutting down")  # 503 before the upgrade
    gatekeeper = request.app[GATEKEEPER]
    gatekeeper.check_origin(request)
    admission = gatekeeper.admit(request)
    if authorize is not None:
        authorize(admission.principal)
    ws = web.WebSocketResponse(
        # Echo the token's subprotocol: a browser fails a handshake that answers none.
        protocols=(admission.subprotocol,) if admission.subprotocol else (),
        max_msg_size=settings.max_message_bytes,
        heartbeat=settings.ping_interval,
        timeout=CLOSE_HANDSHAKE_TIMEOUT,
        compress=False,  # frames are pre-encoded once and shared by every peer
    )
    await ws.prepare(request)
    conn = make(ws, request, settings.max_outbound_bytes, traffic)
    conn.principal = admission.principal
    expiry = _close_at_expiry(conn, admission.principal)
    connections = request.app[CONNECTIONS]
    connections.add(conn)
    try:
        yield conn
    finally:
        if expiry is not None:
            expiry.cancel()
        if ws.close_code == CloseCode.MESSAGE_TOO_BIG:
            log.info("%s: closed %s: message over %d bytes", what, conn.id,
                     settings.max_message_bytes)
        connections.discard(conn)


def _close_at_expiry(conn: Connection, principal: Principal) -> asyncio.TimerHandle | None:
    """Close `conn` with 4401 when its token expires (None: it never does)."""
    if principal.expires_at is None:
        return None
    loop = asyncio.get_running_loop()
    delay = max(0.0, principal.expires_at - time.time())
    return loop.call_later(delay, conn.close, CloseCode.UNAUTHORIZED, "token expired")
