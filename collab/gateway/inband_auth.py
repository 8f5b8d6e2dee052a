"""The `/ws` auth message: how a socket that upgraded without credentials proves who it is.

Its first frame must be `{"op": "auth", "token": ...}`, within COLLAB_AUTH_TIMEOUT
and at most MAX_PREAUTH_MESSAGE_BYTES (gateway/preauth.py refuses a longer one at its
header and holds what follows unread). Nothing is read before it, nothing else is
accepted instead of it and nothing is queued meanwhile (the weakness of
GHSA-xwhh-v746-pj9m: messages buffered while authentication was pending); a
wrong first frame, a refused token or the deadline closes the socket with 4401.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from collab.errors import BadRequest, CloseCode, Forbidden
from collab.gateway.app_keys import GATEKEEPER, SETTINGS
from collab.gateway.preauth import Unauthenticated
from collab.gateway.ratelimit import RateLimit, refused
from collab.gateway.socket_peer import SocketPeer
from collab.gateway.traffic import INVALID
from collab.gateway.user_rules import CLOSED
from collab.logs import Throttled
from collab.protocol import native

log = logging.getLogger(__name__)

AUTH_OP = "auth"
FIRST_MESSAGE = '{"op": "auth", "token": "<jwt>"}'


async def authenticate_in_band(conn: Any, unauthenticated: Unauthenticated,
                               request: web.Request, limit: RateLimit) -> bool:
    """Read and check `conn`'s auth message; True once admitted (it has been answered,
    and `unauthenticated` lets the rest of its frames in), False when the socket was
    closed instead. `conn` is a NativeSocketPeer."""
    settings = request.app[SETTINGS]
    try:
        async with asyncio.timeout(settings.auth_timeout):
            msg = await conn.ws.receive()
    except TimeoutError:
        return await _refuse(conn, CloseCode.UNAUTHORIZED,
                             f"no auth message within {settings.auth_timeout:g} s")
    if msg.type is not WSMsgType.BINARY and msg.type is not WSMsgType.TEXT:
        return False  # closed, or a protocol error aiohttp already answered
    data = msg.data
    conn.binary = isinstance(data, bytes)  # its first frame sets the event format
    if await refused(limit, conn, len(data)):
        return False
    try:
        message = native.decode(data)
    except native.MalformedMessage as exc:
        conn.traffic.count_received(INVALID, len(data))
        return await _refuse(conn, CloseCode.UNAUTHORIZED, f"authenticate first: {exc.message}")
    if message["op"] != AUTH_OP or not isinstance(message.get("token"), str):
        conn.traffic.count_received(INVALID, len(data))
        return await _refuse(conn, CloseCode.UNAUTHORIZED,
                             f"authenticate first: send {FIRST_MESSAGE}")
    conn.traffic.count_received(AUTH_OP, len(data))
    request_id = message.get("id")
    gatekeeper = request.app[GATEKEEPER]
    since = time.time()
    try:
        principal = await gatekeeper.authenticate(message["token"], request)
    except BadRequest as exc:  # Unauthorized or Forbidden, from the token or the hook
        conn.send_out(native.error(request_id, exc.code, exc.message))
        code = CloseCode.FORBIDDEN if isinstance(exc, Forbidden) else CloseCode.UNAUTHORIZED
        return await _refuse(conn, code, exc.message)
    except Exception:
        log.exception("%s: the auth hook failed", conn.id)
        return await _refuse(conn, CloseCode.INTERNAL_ERROR, "authentication failed")
    conn.admit(principal, since)
    if gatekeeper.rules.settle(conn) == CLOSED:  # an administrator's change while we checked
        return False
    unauthenticated.admitted(settings.max_message_bytes)
    conn.send_out(native.response(request_id, {"user": principal.user,
                                               "expires_at": principal.expires_at}))
    return True


#: One line per 10 s, however many sockets a client opens and leaves silent.
_refusals = Throttled(log)


async def _refuse(conn: SocketPeer, code: int, reason: str) -> bool:
    _refusals.log(logging.INFO, "%s: not authenticated, closing with %d: %s", conn.id, code,
                  reason)
    await conn.aclose(code, reason)
    return False
