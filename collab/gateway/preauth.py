"""What a `/ws` socket may cost before it authenticates, and the budget of all the
connections that have not authenticated yet.

Upgraded without credentials, a socket gets a reader that takes one message of
at most MAX_PREAUTH_MESSAGE_BYTES: a longer one is refused (1009) at its frame
header, before any of its payload is buffered. Bytes after that first message
wait unread (the socket is not read meanwhile) until the auth message is
accepted; then the socket gets a reader with the server's full message limit
and carries on where it was, so a client may send requests right behind its
auth message. At most COLLAB_MAX_PENDING_AUTH connections wait to authenticate
at once, counting those still sending their request head (gateway/sockets.py);
a new one past that closes the one waiting longest (a `/ws` socket with 1013,
try again later).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from aiohttp import web
from aiohttp.http import WebSocketReader

from collab.config import MAX_PREAUTH_MESSAGE_BYTES
from collab.errors import CloseCode
from collab.gateway.connection import Connection
from collab.logs import Throttled
from collab.protocol.wsframe import FirstMessage

log = logging.getLogger(__name__)

#: The reader's limit for a socket that has not authenticated. aiohttp refuses a
#: message of `max_msg_size` bytes or more, so one more byte lets exactly
#: MAX_PREAUTH_MESSAGE_BYTES through.
PREAUTH_READER_LIMIT = MAX_PREAUTH_MESSAGE_BYTES + 1


class HeldReader:
    """The payload parser of a socket that has not authenticated, in aiohttp's place:
    passes its bytes to aiohttp's own reader (built with PREAUTH_READER_LIMIT) up to
    the end of the first message, and holds what follows with reading paused."""

    __slots__ = ("_end", "_held", "_reader", "_transport")

    def __init__(self, reader: Any, transport: Any) -> None:
        self._reader = reader
        self._transport = transport
        self._end: FirstMessage | None = FirstMessage()
        self._held: list[bytes] = []

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._end is None:  # past the first message: wait for `release`
            self._hold(data)
            return False, b""
        offset = self._end.feed(data)
        if offset is None:
            return self._reader.feed_data(data)
        self._end = None
        if offset < len(data):
            self._hold(data[offset:])
        return self._reader.feed_data(data[:offset])

    def feed_eof(self) -> None:
        self._reader.feed_eof()

    def _hold(self, data: bytes) -> None:
        # The transport, not aiohttp's flow control, is paused: reading the auth
        # message resumes the latter, and that must not let more bytes in here.
        self._held.append(data)
        self._transport.pause_reading()

    def release(self) -> list[bytes]:
        """What was held, in order; reading resumes (what is fed next goes in after it)."""
        held, self._held = self._held, []
        if not self._transport.is_closing():
            self._transport.resume_reading()
        return held


class PendingAuth:
    """The connections that have not authenticated yet, oldest first, at most `limit`
    (0: no limit): past it, the one waiting longest is closed to make room. Both
    phases count: a connection still sending its request head (gateway/sockets.py)
    and a `/ws` socket still to send its auth message."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: dict[Hashable, Callable[[], None]] = {}
        self._evictions = Throttled(log)

    def __len__(self) -> int:
        return len(self._waiting)

    def enter(self, member: Hashable, evict: Callable[[], None]) -> None:
        """Count `member` until `leave`; past the limit, call `evict` of the one that
        has waited longest (which must close it)."""
        if self.limit and len(self._waiting) >= self.limit:
            oldest = next(iter(self._waiting))
            evict_oldest = self._waiting.pop(oldest)
            self._evictions.log(logging.WARNING, "%d connections are waiting to authenticate "
                                "(sending their request head, or a /ws socket its auth "
                                "message), this server's limit (COLLAB_MAX_PENDING_AUTH): "
                                "closing the one waiting longest", self.limit)
            evict_oldest()
        self._waiting[member] = evict

    def leave(self, member: Hashable) -> None:
        self._waiting.pop(member, None)


class Unauthenticated:
    """A `/ws` socket upgraded without credentials, until `admitted` or `close`: its
    reader is held to the first message and it has a place in `pending`."""

    __slots__ = ("_conn", "_held", "_pending", "_request")

    def __init__(self, conn: Connection, request: web.Request, pending: PendingAuth) -> None:
        """Call right after `ws.prepare`, with a WebSocketResponse made with
        max_msg_size=PREAUTH_READER_LIMIT."""
        self._conn = conn
        self._request = request
        self._pending = pending
        protocol = request.protocol
        # aiohttp (as of 3.14) has no public way to change a socket's reader: its
        # prepare() sets the reader as the protocol's payload parser, and this puts
        # HeldReader in front of it.
        self._held: HeldReader | None = HeldReader(protocol._payload_parser, request.transport)
        protocol._payload_parser = self._held
        pending.enter(conn, lambda: conn.close(CloseCode.TRY_AGAIN_LATER,
                                               "too many sockets waiting to authenticate"))

    @property
    def waiting(self) -> bool:
        """Whether it has yet to authenticate (its reader still held to the first message)."""
        return self._held is not None

    def admitted(self, max_message_bytes: int) -> None:
        """The socket authenticated: read it on with a `max_message_bytes` limit, starting
        with what was held."""
        self._pending.leave(self._conn)
        if self._held is None:
            return
        ws, protocol = self._conn.ws, self._request.protocol
        # A reader of aiohttp's own, set up as WebSocketResponse.prepare sets one up
        # (collab never negotiates compression); it takes over at the first byte
        # after the auth message, where HeldReader stopped.
        reader = WebSocketReader(ws._reader, max_message_bytes, compress=False, decode_text=True)
        held, self._held = self._held.release(), None
        protocol._payload_parser = ws._parser = reader
        for data in held:
            eof, _ = reader.feed_data(data)
            if eof:  # aiohttp's protocol does the same when its reader gives up
                protocol.close()
                return

    def close(self) -> None:
        self._pending.leave(self._conn)
