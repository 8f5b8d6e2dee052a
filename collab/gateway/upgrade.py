"""Upgrading an HTTP request to a WebSocket, the same way for `/yjs` and `/ws`.

Refuses with 503 while the server drains, with 403 for an Origin off the
allowlist, with 429 when the client's address holds too many sockets, with 401
without acceptable credentials (unless the endpoint authenticates in-band:
`/ws`'s auth message) and with 403 when the caller's check refuses the
principal; sets the frame size limit from the settings (a socket still to
authenticate in-band gets gateway/preauth.py's limits instead); takes the
connection over from aiohttp (gateway/websocket.py) and serves it in a task of its
own; registers the connection so shutdown can close it with 1012; closes it with
4401 when its token expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from aiohttp import web

from collab.auth import Principal
from collab.config import MAX_PREAUTH_MESSAGE_BYTES
from collab.errors import BadRequest, CloseCode, Forbidden, ShuttingDown
from collab.gateway.access import Admission, MissingCredentials
from collab.gateway.addresses import client_address
from collab.gateway.app_keys import (
    ADDRESSES,
    CONNECTIONS,
    GATEKEEPER,
    PENDING_AUTH,
    SESSIONS,
    SETTINGS,
    SYSTEM,
)
from collab.gateway.preauth import PREAUTH_READER_LIMIT, Unauthenticated
from collab.gateway.socket_peer import SocketPeer
from collab.gateway.sockets import guard_of
from collab.gateway.traffic import EndpointTraffic
from collab.gateway.websocket import WebSocket, detach
from collab.logs import Throttled

log = logging.getLogger(__name__)

#: Seconds to wait for a peer's answer to our close frame before dropping the
#: TCP connection; bounds how long a shutdown can be held up by silent peers.
CLOSE_HANDSHAKE_TIMEOUT = 5.0

C = TypeVar("C", bound=SocketPeer)

#: One line per 10 s: a client may open sockets only to send them too much.
_too_big = Throttled(log)


#: What serves a socket once it is open: `session(conn, unauthenticated)`.
Session = Callable[[C, "Unauthenticated | None"], Awaitable[None]]


async def serve_socket(request: web.Request,
                       make: Callable[[WebSocket, web.Request, int, EndpointTraffic], C],
                       what: str, traffic: EndpointTraffic, session: Session[C],
                       authorize: Callable[[Principal], None] | None = None, *,
                       in_band_auth: bool = False) -> web.StreamResponse:
    """Upgrade `request`, and serve the connection `make` builds with
    `session(conn, unauthenticated)` in a task of its own, counting its frames in
    `traffic`; returns at once what aiohttp takes as the response (it writes nothing
    more), so that aiohttp's request is freed while the socket is open.

    `unauthenticated` is None if the socket is admitted. `authorize` may raise
    Forbidden (a 403 before the upgrade) after the client is authenticated;
    `conn.principal` is who it admitted. With `in_band_auth`, a request that presents
    no credentials at all is upgraded unadmitted, with its Unauthenticated state: the
    session must authenticate it (`conn.admit`, then `admitted` on that state) before
    acting on anything it sends. When the session ends the socket is closed (1000,
    if the session left it open) and unregistered."""
    app = request.app
    try:
        address, admission, since = await _knock(request, authorize, in_band_auth)
    except (BadRequest, ShuttingDown) as exc:  # refused before the upgrade: HTTP error
        traffic.count_refused(exc.code)
        raise
    try:
        response, conn, unauthenticated = await _upgrade(request, make, traffic, authorize,
                                                         admission, since)
    except BaseException:
        app[ADDRESSES].leave(address)
        raise
    conn.remote = address
    if admission is not None:
        # An administrator's change during the handshake missed this socket.
        app[GATEKEEPER].rules.settle(conn)
    task = asyncio.create_task(_serve(app, what, traffic, address, conn, unauthenticated,
                                      session(conn, unauthenticated)))
    sessions = app[SESSIONS]
    sessions.add(task)
    task.add_done_callback(sessions.discard)
    return response


async def _serve(app: web.Application, what: str, traffic: EndpointTraffic, address: str,
                 conn: C, unauthenticated: Unauthenticated | None,
                 session: Awaitable[None]) -> None:
    """Run `session` on the open socket `conn`, then close and unregister it."""
    try:
        await session
    except Exception:
        log.exception("%s: serving %s failed", what, conn.id)
        if not conn.closed:
            await conn.aclose(CloseCode.INTERNAL_ERROR, "internal error")
    finally:
        try:
            ws = conn.ws
            await ws.close()  # what aiohttp did with a handler's open socket: 1000
            conn.forget()
            if unauthenticated is not None:
                unauthenticated.close()
            traffic.count_close(conn.closed_with if conn.closed_with is not None
                                else ws.close_code)
            if ws.close_code == CloseCode.MESSAGE_TOO_BIG:
                _too_big.log(logging.INFO, "%s: closed %s: a message over %d bytes",
                             what, conn.id, MAX_PREAUTH_MESSAGE_BYTES
                             if unauthenticated and unauthenticated.waiting
                             else app[SETTINGS].max_message_bytes)
            app[CONNECTIONS].discard(conn)
        finally:
            app[ADDRESSES].leave(address)


async def _knock(request: web.Request, authorize: Callable[[Principal], None] | None,
                 in_band_auth: bool) -> tuple[str, Admission | None, float]:
    """Who is knocking, before any upgrade: (their address, now counted against its
    limit; their admission, None to authenticate in-band; when the check began).
    Raises the HTTP error that refuses them, having counted nothing."""
    if request.app[SYSTEM].closing:
        raise ShuttingDown("the server is shutting down")  # 503 before the upgrade
    gatekeeper = request.app[GATEKEEPER]
    gatekeeper.check_origin(request)
    address = client_address(request, request.app[SETTINGS].forwarded_hops)
    addresses = request.app[ADDRESSES]
    addresses.enter(address)  # 429 past the limit, before any other work
    since = time.time()
    try:
        try:
            admission: Admission | None = await gatekeeper.admit(request)
        except MissingCredentials:
            if not in_band_auth:
                raise
            admission = None
        if authorize is not None and admission is not None:
            authorize(admission.principal)
    except BaseException:
        addresses.leave(address)
        raise
    return address, admission, since


async def _upgrade(request: web.Request,
                   make: Callable[[WebSocket, web.Request, int, EndpointTraffic], C],
                   traffic: EndpointTraffic, authorize: Callable[[Principal], None] | None,
                   admission: Admission | None, since: float,
                   ) -> tuple[web.WebSocketResponse, C, Unauthenticated | None]:
    """Upgrade `request`, take its connection over from aiohttp (gateway/websocket.py),
    build its connection and register it (`_serve` undoes it). Returns the response
    aiohttp is to be given, with the connection."""
    settings = request.app[SETTINGS]
    # Until it authenticates, a socket's messages are held to the auth message's size.
    limit = settings.max_message_bytes if admission is not None else PREAUTH_READER_LIMIT
    ws = web.WebSocketResponse(
        # Echo the token's subprotocol: a browser fails a handshake that answers none.
        protocols=(admission.subprotocol,) if admission and admission.subprotocol else (),
        max_msg_size=limit,
        heartbeat=None,  # gateway/keepalive.py pings every socket
        compress=False,  # frames are pre-encoded once and shared by every peer
    )
    await ws.prepare(request)
    sock = detach(request, ws, CLOSE_HANDSHAKE_TIMEOUT, guard_of(request))
    try:
        conn = make(sock, request, settings.max_outbound_bytes, traffic)
        if authorize is not None:  # what it needed to get in, it needs to stay
            conn.may_keep = partial(_passes, authorize)
        unauthenticated = None
        if admission is not None:
            conn.admit(admission.principal, since)
        else:
            unauthenticated = Unauthenticated(conn, request.app[PENDING_AUTH])
        request.app[CONNECTIONS].add(conn)
    except BaseException:
        sock.abort()
        raise
    return ws, conn, unauthenticated


def _passes(authorize: Callable[[Principal], None], principal: Principal) -> bool:
    try:
        authorize(principal)
    except Forbidden:
        return False
    return True
