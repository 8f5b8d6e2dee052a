"""Upgrading an HTTP request to a WebSocket, the same way for `/yjs` and `/ws`.

Refuses with 503 while the server drains, with 403 for an Origin off the
allowlist, with 429 when the client's address holds too many sockets, with 401
without acceptable credentials (unless the endpoint authenticates in-band:
`/ws`'s auth message) and with 403 when the caller's check refuses the
principal; sets the frame size limit, the keep-alive ping and the
close-handshake bound from the settings (a socket still to authenticate in-band
gets gateway/preauth.py's limits instead); registers the connection so shutdown
can close it with 1012; closes it with 4401 when its token expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Generic, TypeVar

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
    SETTINGS,
    SYSTEM,
)
from collab.gateway.keepalive import heartbeat_for
from collab.gateway.preauth import PREAUTH_READER_LIMIT, Unauthenticated
from collab.gateway.socket_peer import SocketPeer
from collab.gateway.sockets import guard_of
from collab.gateway.traffic import EndpointTraffic
from collab.logs import Throttled

log = logging.getLogger(__name__)

#: Seconds to wait for a peer's answer to our close frame before dropping the
#: TCP connection; bounds how long a shutdown can be held up by silent peers.
CLOSE_HANDSHAKE_TIMEOUT = 5.0

C = TypeVar("C", bound=SocketPeer)

#: One line per 10 s: a client may open sockets only to send them too much.
_too_big = Throttled(log)


class Upgrade(Generic[C]):
    """`async with Upgrade(request, make, what, traffic, authorize) as (conn,
    unauthenticated)`: upgrade `request` and give the connection `make` builds, with
    None if it is admitted, counting its frames in `traffic`; unregisters it on exit.
    `authorize` may raise Forbidden (a 403 before the upgrade) after the client is
    authenticated; `conn.principal` is who it admitted. With `in_band_auth`, a request
    that presents no credentials at all is upgraded unadmitted, and given with its
    Unauthenticated state: the caller must authenticate it (`conn.admit`, then
    `admitted` on that state) before acting on anything it sends.

    A class rather than a generator-based context manager: it lives as long as the
    socket, and its slots cost a tenth of a suspended generator's frames."""

    __slots__ = ("_address", "_authorize", "_conn", "_in_band_auth", "_make", "_request",
                 "_traffic", "_unauthenticated", "_what")

    def __init__(self, request: web.Request,
                 make: Callable[[web.WebSocketResponse, web.Request, int, EndpointTraffic], C],
                 what: str, traffic: EndpointTraffic,
                 authorize: Callable[[Principal], None] | None = None, *,
                 in_band_auth: bool = False) -> None:
        self._request = request
        self._make = make
        self._what = what
        self._traffic = traffic
        self._authorize = authorize
        self._in_band_auth = in_band_auth
        self._address: str | None = None
        self._conn: C | None = None
        self._unauthenticated: Unauthenticated | None = None

    async def __aenter__(self) -> tuple[C, Unauthenticated | None]:
        request = self._request
        try:
            address, admission, since = await _knock(request, self._authorize,
                                                     self._in_band_auth)
        except (BadRequest, ShuttingDown) as exc:  # refused before the upgrade: HTTP error
            self._traffic.count_refused(exc.code)
            raise
        self._address = address
        try:
            conn, unauthenticated = await _upgrade(request, self._make, self._traffic,
                                                   self._authorize, admission, since)
        except BaseException:
            request.app[ADDRESSES].leave(address)
            raise
        self._conn, self._unauthenticated = conn, unauthenticated
        conn.remote = address
        if admission is not None:
            # An administrator's change during the handshake missed this socket.
            request.app[GATEKEEPER].rules.settle(conn)
        return conn, unauthenticated

    async def __aexit__(self, *exc_info: object) -> None:
        request, conn, unauthenticated = self._request, self._conn, self._unauthenticated
        try:
            conn.forget()
            if unauthenticated is not None:
                unauthenticated.close()
            ws = conn.ws
            self._traffic.count_close(conn.closed_with if conn.closed_with is not None
                                      else ws.close_code)
            if ws.close_code == CloseCode.MESSAGE_TOO_BIG:
                _too_big.log(logging.INFO, "%s: closed %s: a message over %d bytes",
                             self._what, conn.id, MAX_PREAUTH_MESSAGE_BYTES
                             if unauthenticated and unauthenticated.waiting
                             else request.app[SETTINGS].max_message_bytes)
            request.app[CONNECTIONS].discard(conn)
        finally:
            request.app[ADDRESSES].leave(self._address)


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
                   make: Callable[[web.WebSocketResponse, web.Request, int, EndpointTraffic], C],
                   traffic: EndpointTraffic, authorize: Callable[[Principal], None] | None,
                   admission: Admission | None, since: float,
                   ) -> tuple[C, Unauthenticated | None]:
    """Upgrade `request`, build its connection and register it (`Upgrade.__aexit__`
    undoes it)."""
    settings = request.app[SETTINGS]
    # Until it authenticates, a socket's messages are held to the auth message's size.
    limit = settings.max_message_bytes if admission is not None else PREAUTH_READER_LIMIT
    guard = guard_of(request)
    ws = web.WebSocketResponse(
        # Echo the token's subprotocol: a browser fails a handshake that answers none.
        protocols=(admission.subprotocol,) if admission and admission.subprotocol else (),
        max_msg_size=limit,
        heartbeat=heartbeat_for(guard, settings.ping_interval),  # else gateway/keepalive.py
        timeout=CLOSE_HANDSHAKE_TIMEOUT,
        compress=False,  # frames are pre-encoded once and shared by every peer
    )
    await ws.prepare(request)
    conn = make(ws, request, settings.max_outbound_bytes, traffic)
    conn.guard = guard
    if authorize is not None:  # what it needed to get in, it needs to stay
        conn.may_keep = partial(_passes, authorize)
    unauthenticated = None
    if admission is not None:
        conn.admit(admission.principal, since)
    else:
        unauthenticated = Unauthenticated(conn, request, request.app[PENDING_AUTH])
    request.app[CONNECTIONS].add(conn)
    return conn, unauthenticated


def _passes(authorize: Callable[[Principal], None], principal: Principal) -> bool:
    try:
        authorize(principal)
    except Forbidden:
        return False
    return True
