"""`/yjs/<doc>`: the y-websocket endpoint. Bytes in, parsed messages to the actor.

The handler owns the socket: it validates the name before upgrading, parses
each binary frame with the pure codec and posts the result to the document's
actor. Bad input closes only this connection, with the code the errors module
assigns; the document and its other clients carry on. A client without read
access is refused (403) before the upgrade; a read-only client that sends a
change is closed with 4403 (its awareness, cursors and names, still flows).
"""

from __future__ import annotations

import logging
from functools import partial

from aiohttp import WSMsgType, web

from collab.actors.document import Document, Inbound, Join, Leave
from collab.errors import CloseCode, RemoteProtocolError, ShuttingDown, close_code_for
from collab.gateway.access import require
from collab.gateway.app_keys import LOADS, SETTINGS, SYSTEM, TRAFFIC
from collab.gateway.names import parse_doc_name
from collab.gateway.ratelimit import Loads, RateLimit, Throttle, refused
from collab.gateway.socket_peer import SocketPeer, sync_allowance
from collab.gateway.traffic import INVALID, YJS_KINDS, EndpointTraffic
from collab.gateway.upgrade import serve_socket
from collab.protocol import ywire
from collab.runtime.refs import Route

log = logging.getLogger(__name__)

#: Messages that carry a Yjs update, whose values are checked before the actor sees them.


async def yjs_socket(request: web.Request) -> web.StreamResponse:
    name = parse_doc_name(request.match_info["name"])
    traffic = request.app[TRAFFIC].yjs
    return await serve_socket(
        request, SocketPeer, f"doc {name!r}", traffic,
        partial(_serve_doc, request.app, name, traffic),
        lambda principal: require(principal, "docs", name, write=False))


async def _serve_doc(app: web.Application, name: str, traffic: EndpointTraffic,
                     conn: SocketPeer, _: object) -> None:
    """One `/yjs` socket to document `name`, from sync to leaving."""
    # An administrator may lower a live socket's permissions (admin_api.py).
    principal = conn.principal
    read_only = not principal.can_write("docs", name)
    settings, system = app[SETTINGS], app[SYSTEM]
    route = Route(system, Document, name)
    post = route.post
    conn.asked_allowance = sync_allowance(settings.max_document_bytes)
    limit = RateLimit(settings)
    if system.present(Document, name) is None:  # joining wakes it: its address pays
        limit.owe(Loads(settings, app[LOADS], conn.remote).charge())
        if await refused(limit, conn, 0):
            return
    try:
        post(Join(conn))
    except ShuttingDown:  # the drain began during the handshake
        await conn.aclose(CloseCode.SERVICE_RESTART, "server restarting")
        return
    parse = ywire.parse
    awareness = Throttle(app[SETTINGS].max_awareness_per_second)
    try:
        async for msg in conn.ws:
            if msg.type is WSMsgType.BINARY:
                if await refused(limit, conn, len(msg.data)):
                    break
                try:
                    message = parse(msg.data)
                except RemoteProtocolError as exc:
                    traffic.count_received(INVALID, len(msg.data))
                    log.info("doc %r: closing %s: %s", name, conn.id, exc.message)
                    await conn.aclose(close_code_for(exc), exc.message)
                    break
                traffic.count_received(YJS_KINDS[type(message)], len(msg.data))
                if conn.principal is not principal:  # lowered meanwhile
                    principal = conn.principal
                    read_only = not principal.can_write("docs", name)
                if read_only and ywire.changes_document(message):
                    log.info("doc %r: closing %s: a change from read-only user %r", name,
                             conn.id, conn.principal.user)
                    await conn.aclose(CloseCode.FORBIDDEN, "read-only")
                    break
                if type(message) is ywire.AwarenessMessage and not awareness.take(None):
                    # Past the awareness rate: the latest goes when the budget allows.
                    awareness.hold(None, lambda m=message: post(Inbound(conn, m)))
                else:
                    post(Inbound(conn, message))
            elif msg.type is WSMsgType.TEXT:
                traffic.count_received(INVALID, len(msg.data))
                log.info("doc %r: closing %s: text frame", name, conn.id)
                await conn.aclose(CloseCode.UNSUPPORTED_DATA,
                                  "text frames are not part of the y-websocket protocol")
                break
    finally:
        awareness.close()
        post(Leave(conn))
