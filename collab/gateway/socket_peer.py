"""A client's WebSocket as seen by actors: write pre-encoded frames, or close.

Shared by both endpoints: `/yjs` writes Yjs messages as raw frames, `/ws`
(a subclass in gateway/ws_endpoint.py) wraps them in native events.

Frames are written straight to the transport (the same bytes for every peer of
a broadcast), so an actor never awaits a socket. The transport's buffer is the
connection's bounded outbound queue: past `max_outbound_bytes` the peer is a
slow consumer and is dropped; it resyncs when it reconnects. Frames the client
asked for to sync (a document's content, who is here) do not count against that
while unread, up to `asked_allowance` bytes: a newcomer is never dropped for the
size of what it asked for. Every frame written is counted by kind in the
endpoint's traffic counts (gateway/traffic.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from collab.actors.awareness import MAX_BYTES as AWARENESS_MAX_BYTES
from collab.auth import NOBODY, Principal
from collab.config import DEFAULT_MAX_DOCUMENT_BYTES
from collab.errors import CloseCode
from collab.gateway.traffic import YJS_KINDS, EndpointTraffic
from collab.protocol.native import Outgoing, YjsOut

if TYPE_CHECKING:
    from collab.gateway.websocket import WebSocket

log = logging.getLogger(__name__)

_ids = itertools.count(1)


def sync_allowance(max_document_bytes: int) -> int:
    """Bytes a connection may leave unread of what it asked for to sync without being a
    slow consumer: one whole document (its quota, COLLAB_MAX_DOCUMENT_BYTES, or the
    default quota when there is none) and everyone's awareness. Bounded, so a client
    that asks again and again without reading is still dropped."""
    return (max_document_bytes or DEFAULT_MAX_DOCUMENT_BYTES) + AWARENESS_MAX_BYTES


def _keeps_any(principal: Principal) -> bool:
    """Any lowered permissions are enough to keep this socket (one function for all)."""
    return True


class SocketPeer:
    #: y-websocket has no acknowledgements: a sender's update comes back after commit.
    echo_ack = True

    __slots__ = ("_asked", "_asked_bytes", "_close_task", "_closing", "_expiry", "_sent",
                 "_transport", "_written", "admitted_at", "asked_allowance", "closed_with",
                 "id", "max_outbound_bytes", "may_keep", "principal", "remote", "traffic", "ws")

    def __init__(self, ws: WebSocket, request: web.Request,
                 max_outbound_bytes: int, traffic: EndpointTraffic) -> None:
        self.ws = ws
        self.traffic = traffic
        self._sent = traffic.sent
        self.id = f"c{next(_ids)}"
        self.remote = request.remote or "?"
        self._transport: asyncio.Transport = ws.transport  # the socket's, for the hot path
        self.max_outbound_bytes = max_outbound_bytes
        #: Bytes of asked-for frames (`send_sync`) that may wait unread without counting
        #: as slow consumption; the endpoint sets it (`sync_allowance`).
        self.asked_allowance = 0
        #: Bytes written since asked-for frames began to wait unread (counted only then).
        self._written = 0
        #: (end in _written, size) of asked-for frames unread; a deque only while there
        #: are some (an idle socket keeps none: a deque is 600 bytes).
        self._asked: deque[tuple[int, int]] | tuple[()] = ()
        self._asked_bytes = 0  # their sum
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        #: Who the client is and what it may do; nothing until `admit`.
        self.principal: Principal = NOBODY
        #: When the check that admitted it began (Unix time): a revocation after it
        #: closes the socket.
        self.admitted_at = 0.0
        #: Whether this socket may go on with lower permissions (an administrator's
        #: limits), given what it holds; the endpoint sets it. False: closed with 4403.
        self.may_keep: Callable[[Principal], bool] = _keeps_any
        self._expiry: asyncio.TimerHandle | None = None
        #: The close code this server sent, if it closed the socket (aiohttp's
        #: `ws.close_code` is then the peer's answer to it).
        self.closed_with: int | None = None

    def __repr__(self) -> str:
        return f"<SocketPeer {self.id} {self.remote}>"

    @property
    def closed(self) -> bool:
        return self._closing or self.ws.closed or self._transport.is_closing()

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

    def send_frame(self, frame: bytes, kind: str, asked: bool = False) -> None:
        """Write one pre-encoded frame of message kind `kind`, one of the endpoint's
        sent kinds (gateway/traffic.py). `asked`: the client asked for it to sync,
        and it does not count as slow consumption while unread (`asked_allowance`)."""
        transport = self._transport
        if self._closing or transport.is_closing():
            return
        transport.write(frame)
        counts = self._sent[kind]  # inlined EndpointTraffic.count_sent: once per peer
        counts[0] += 1
        counts[1] += len(frame)
        if asked or self._asked:
            self._track_asked(len(frame), asked, transport.get_write_buffer_size())
        if transport.get_write_buffer_size() > self.max_outbound_bytes:
            self._drop_if_slow(transport)

    def _track_asked(self, size: int, asked: bool, unsent: int) -> None:
        """Count the frame just written, of `size`, while asked-for frames are unread
        (`_written` only needs to be exact from the first of them on); exempt it if
        it was asked for and the allowance has room for it."""
        if not unsent:  # everything went out at once: nothing asked-for waits unread
            self._asked, self._asked_bytes = (), 0
            return
        self._written = self._written + size if self._asked else unsent
        if asked and self._unread_asked(unsent) + size <= self.asked_allowance:
            if not self._asked:
                self._asked = deque()
            self._asked.append((self._written, size))
            self._asked_bytes += size

    def _unread_asked(self, unsent: int) -> int:
        """Bytes of asked-for frames still in the buffer (a frame partly sent counts whole)."""
        sent = self._written - unsent
        asked = self._asked
        while asked and asked[0][0] <= sent:
            self._asked_bytes -= asked.popleft()[1]  # type: ignore[union-attr]
        if not asked:
            self._asked = ()
        return self._asked_bytes

    def _drop_if_slow(self, transport: asyncio.Transport) -> None:
        """Past `max_outbound_bytes` unsent, not counting what it asked for: drop it."""
        unsent = transport.get_write_buffer_size()
        if unsent - self._unread_asked(unsent) <= self.max_outbound_bytes:
            return
        log.warning("%s: slow consumer (%d bytes unsent), dropping", self.id, unsent)
        self.drop()  # no close frame: it would queue behind the rest

    def drop(self) -> None:
        """End the connection without a close frame (the peer is too slow or gone)."""
        self._closing = True
        self.closed_with = CloseCode.ABNORMAL_CLOSURE
        self.ws.abort()

    def send_yjs(self, out: YjsOut) -> None:
        self.send_frame(out.raw_frame(), YJS_KINDS[type(out.message)])

    def send_sync(self, out: YjsOut) -> None:
        self.send_frame(out.raw_frame(), YJS_KINDS[type(out.message)], asked=True)

    def send_out(self, out: Outgoing) -> None:
        """A native message on a `/yjs` socket: it has no frame for one (and, joined to
        documents only, is never sent one); dropped. `/ws` sockets override this."""

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
            self._transport.abort()
