"""Upgrading an HTTP request to a WebSocket, the same way for `/yjs` and `/ws`.

Refuses with 503 while the server drains; sets the frame size limit, the
keep-alive ping and the close-handshake bound from the settings; registers the
connection so shutdown can close it with 1012.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from aiohttp import web

from collab.errors import CloseCode, ShuttingDown
from collab.gateway.connection import Connection
from collab.gateway.keys import CONNECTIONS, SETTINGS, SYSTEM
from collab.gateway.traffic import EndpointTraffic

log = logging.getLogger(__name__)

#: Seconds to wait for a peer's answer to our close frame before dropping the
#: TCP connection; bounds how long a shutdown can be held up by silent peers.
CLOSE_HANDSHAKE_TIMEOUT = 5.0

C = TypeVar("C", bound=Connection)


@asynccontextmanager
async def websocket(request: web.Request,
                    make: Callable[[web.WebSocketResponse, web.Request, int, EndpointTraffic], C],
                    what: str, traffic: EndpointTraffic) -> AsyncIterator[C]:
    """Upgrade `request` and yield the connection `make` builds, counting its frames in
    `traffic`; unregisters it on exit."""
    settings = request.app[SETTINGS]
    if request.app[SYSTEM].closing:
        raise ShuttingDown("the server is shutting down")  # 503 before the upgrade
    ws = web.WebSocketResponse(
        max_msg_size=settings.max_message_bytes,
        heartbeat=settings.ping_interval,
        timeout=CLOSE_HANDSHAKE_TIMEOUT,
        compress=False,  # frames are pre-encoded once and shared by every peer
    )
    await ws.prepare(request)
    conn = make(ws, request, settings.max_outbound_bytes, traffic)
    connections = request.app[CONNECTIONS]
    connections.add(conn)
    try:
        yield conn
    finally:
        if ws.close_code == CloseCode.MESSAGE_TOO_BIG:
            log.info("%s: closed %s: message over %d bytes", what, conn.id,
                     settings.max_message_bytes)
        connections.discard(conn)
