"""A client's WebSocket as seen by actors: write pre-encoded frames, or close.

Shared by both endpoints: `/yjs` writes Yjs messages as raw frames, `/ws`
(a subclass in gateway/native.py) wraps them in native events.

Frames are written straight to the transport (the same bytes for every peer of
a broadcast), so an actor never awaits a socket. The transport's buffer is the
connection's bounded outbound queue: past `max_outbound_bytes` the peer is a
slow consumer and is dropped; it resyncs when it reconnects. Every frame written
is counted by kind in the endpoint's traffic counts (gateway/traffic.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from aiohttp import web

from collab.auth import NOBODY, Principal
from collab.errors import CloseCode
from collab.gateway.traffic import YJS_KINDS, EndpointTraffic
from collab.protocol.native import YjsOut

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class Connection:
    #: y-websocket has no acknowledgements: a sender's update comes back after commit.
    echo_ack = True

    __slots__ = ("_close_task", "_closing", "_expiry", "_sent", "_transport", "admitted_at",
                 "closed_with", "id", "max_outbound_bytes", "may_keep", "principal", "remote",
                 "traffic", "ws")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request,
                 max_outbound_bytes: int, traffic: EndpointTraffic) -> None:
        self.ws = ws
        self.traffic = traffic
        self._sent = traffic.sent
        self.id = f"c{next(_ids)}"
        self.remote = request.remote or "?"
        self._transport = request.transport
        self.max_outbound_bytes = max_outbound_bytes
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        #: Who the client is and what it may do; nothing until `admit`.
        self.principal: Principal = NOBODY
        #: When the check that admitted it began (Unix time): a revocation after it
        #: closes the socket.
        self.admitted_at = 0.0
        #: Whether this socket may go on with lower permissions (an administrator's
        #: limits), given what it holds; the endpoint sets it. False: closed with 4403.
        self.may_keep: Callable[[Principal], bool] = lambda principal: True
        self._expiry: asyncio.TimerHandle | None = None
        #: The close code this server sent, if it closed the socket (aiohttp's
        #: `ws.close_code` is then the peer's answer to it).
        self.closed_with: int | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.remote}>"

    @property
    def closed(self) -> bool:
        return self._closing or self.ws.closed or self._transport is None \
            or self._transport.is_closing()

    def admit(self, principal: Principal, since: float) -> None:
        """Act for `principal`, authenticated by a check that began at `since` (Unix
        time), from now on; closed with 4401 when its token expires."""
        self.principal = principal
        self.admitted_at = since
        self.forget()
        if principal.expires_at is not None:
            delay = max(0.0, principal.expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(
                delay, self.close, CloseCode.UNAUTHORIZED, "token expired")

    def forget(self) -> None:
        """Drop the expiry timer (the socket is done, or admitted anew)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def send_frame(self, frame: bytes, kind: str) -> None:
        """Write one pre-encoded frame of message kind `kind`, one of the endpoint's
        sent kinds (gateway/traffic.py)."""
        transport = self._transport
        if self._closing or transport is None or transport.is_closing():
            return
        transport.write(frame)
        counts = self._sent[kind]  # inlined EndpointTraffic.count_sent: once per peer
        counts[0] += 1
        counts[1] += len(frame)
        if transport.get_write_buffer_size() > self.max_outbound_bytes:
            log.warning("%s: slow consumer (%d bytes unsent), dropping", self.id,
                        transport.get_write_buffer_size())
            self._closing = True
            self.closed_with = CloseCode.ABNORMAL_CLOSURE  # no close frame: it would queue
            transport.abort()

    def send_yjs(self, out: YjsOut) -> None:
        self.send_frame(out.raw_frame(), YJS_KINDS[type(out.message)])

    def close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self.closed_with = code
        self._close_task = asyncio.ensure_future(self.aclose(code, reason))

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send a close frame with `code` and wait (bounded) for the handshake."""
        self._closing = True
        if self.closed_with is None:
            self.closed_with = code
        try:
            await self.ws.close(code=code, message=reason.encode()[:120])
        except Exception:  # the peer may already be gone; nothing to tell it
            if self._transport is not None:
                self._transport.abort()
