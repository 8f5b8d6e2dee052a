"""`/yjs/<doc>`: the y-websocket endpoint. Bytes in, parsed messages to the actor.

The handler owns the socket: it validates the name before upgrading, parses
each binary frame with the pure codec and posts the result to the document's
actor. Bad input closes only this connection, with the code the errors module
assigns; the document and its other clients carry on.
"""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web

from collab.actors.document import Document, Inbound, Join, Leave
from collab.errors import CloseCode, RemoteProtocolError, ShuttingDown, close_code_for
from collab.gateway.connection import Connection
from collab.gateway.keys import CONNECTIONS, SETTINGS, SYSTEM
from collab.gateway.names import parse_doc_name
from collab.protocol import ywire

log = logging.getLogger(__name__)

#: Seconds to wait for a peer's answer to our close frame before dropping the
#: TCP connection; bounds how long a shutdown can be held up by silent peers.
CLOSE_HANDSHAKE_TIMEOUT = 5.0


async def yjs_socket(request: web.Request) -> web.StreamResponse:
    name = parse_doc_name(request.match_info["name"])
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
    conn = Connection(ws, request, settings.max_outbound_bytes)
    connections = request.app[CONNECTIONS]
    connections.add(conn)
    actor = request.app[SYSTEM].post(Document, name, Join(conn))
    post = actor.post
    parse = ywire.parse
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                try:
                    message = parse(msg.data)
                except RemoteProtocolError as exc:
                    log.info("doc %r: closing %s: %s", name, conn.id, exc.message)
                    await conn.aclose(close_code_for(exc), exc.message)
                    break
                post(Inbound(conn, message))
            elif msg.type is WSMsgType.TEXT:
                log.info("doc %r: closing %s: text frame", name, conn.id)
                await conn.aclose(CloseCode.UNSUPPORTED_DATA,
                                  "text frames are not part of the y-websocket protocol")
                break
    finally:
        if ws.close_code == CloseCode.MESSAGE_TOO_BIG:
            log.info("doc %r: closed %s: message over %d bytes", name, conn.id,
                     settings.max_message_bytes)
        post(Leave(conn))
        connections.discard(conn)
    return ws
