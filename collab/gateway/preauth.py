"""What a connection may make the server hold before it authenticates, one by one and
all together.

Upgraded without credentials, a `/ws` (or Hocuspocus) socket gets a reader that
takes one message of at most MAX_PREAUTH_MESSAGE_BYTES (the Hocuspocus endpoint
lets them in one by one until a document authenticates): a longer one is refused (1009) at its frame
header, before any of its payload is buffered. Bytes after that first message
wait unread (the socket is not read meanwhile) until the auth message is
accepted; then the socket gets a reader with the server's full message limit
and carries on where it was, so a client may send requests right behind its
auth message.

All the bytes held for connections that have not authenticated (unfinished
request heads, gateway/sockets.py; unfinished auth messages) count against one
budget, COLLAB_MAX_PREAUTH_BYTES. Past it, the connection that has waited
longest while holding at least PREAUTH_SHED_MIN_BYTES is closed (a `/ws` socket
with 1013, try again later), until the total fits again (if those are not
enough, the longest waiting of any size). An honest client holds next to nothing
while it waits (its head and auth message arrive whole and are read at once), so
a reconnect storm of thousands is never shed; a flood of half-sent frames and
heads is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from collab.config import MAX_PREAUTH_MESSAGE_BYTES
from collab.errors import CloseCode
from collab.gateway.socket_peer import SocketPeer
from collab.logs import Throttled
from collab.protocol.wsframe import FirstMessage

log = logging.getLogger(__name__)

#: The reader's limit for a socket that has not authenticated. aiohttp refuses a
#: message of `max_msg_size` bytes or more, so one more byte lets exactly
#: MAX_PREAUTH_MESSAGE_BYTES through.
PREAUTH_READER_LIMIT = MAX_PREAUTH_MESSAGE_BYTES + 1
#: Bytes a waiting connection must hold to be closed when the budget is exceeded:
#: a whole head or auth message waiting its turn (under ~2 KiB) is never the excess.
PREAUTH_SHED_MIN_BYTES = 4 * 1024


class PendingAuth:
    """The connections that have not authenticated yet, oldest first, and the bytes
    the server holds for them: at most `budget` in all (0: no limit)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        #: Per connection waiting: [how to close it, bytes held for it].
        self._waiting: dict[Hashable, list[Any]] = {}
        self.held = 0
        #: Connections closed since start to keep within the budget, or to make room.
        self.closed = 0
        self._shed_log = Throttled(log)

    def __len__(self) -> int:
        return len(self._waiting)

    def enter(self, member: Hashable, evict: Callable[[], None]) -> None:
        """Count `member` until `leave`; `evict` must close it when it has to go."""
        self._waiting[member] = [evict, 0]

    def hold(self, member: Hashable, size: int) -> None:
        """`size` more bytes are held for `member`; past the budget, close connections
        (the longest waiting that hold much) until the total fits."""
        entry = self._waiting.get(member)
        if entry is None:
            return
        entry[1] += size
        self.held += size
        if self.budget and self.held > self.budget:
            self._shed()

    def leave(self, member: Hashable) -> None:
        entry = self._waiting.pop(member, None)
        if entry is not None:
            self.held -= entry[1]

    def evict_oldest(self) -> bool:
        """Close the connection that has waited longest (the process is out of room for
        connections); False if none is waiting."""
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        evict, _ = self._waiting[oldest]
        self.leave(oldest)
        self.closed += 1
        evict()
        return True

    def _shed(self) -> None:
        """Close the longest waiting of those holding PREAUTH_SHED_MIN_BYTES or more until
        the total fits; if those are not enough, the longest waiting of any size."""
        closed = 0
        for least in (PREAUTH_SHED_MIN_BYTES, 0):
            for member, (evict, size) in list(self._waiting.items()):
                if self.held <= self.budget:
                    break
                if size >= least and member in self._waiting:
                    self.leave(member)
                    evict()
                    closed += 1
        self.closed += closed
        if closed:
            self._shed_log.log(logging.WARNING, "connections waiting to authenticate hold more "
                               "than %d bytes (COLLAB_MAX_PREAUTH_BYTES: unfinished request "
                               "heads and /ws auth messages): closed %d of them, the longest "
                               "waiting", self.budget, closed)


class HeldReader:
    """The parser of a socket that has not authenticated (its WebSocket's `parser`):
    passes its bytes to aiohttp's reader (built with PREAUTH_READER_LIMIT) up to
    the end of the first message, and holds what follows with reading paused; counts
    what it passed and holds in `pending`."""

    __slots__ = ("_end", "_held", "_member", "_pending", "_reader", "_transport")

    def __init__(self, reader: Any, transport: Any, pending: PendingAuth,
                 member: Hashable) -> None:
        self._reader = reader
        self._transport = transport
        self._pending = pending
        self._member = member
        self._end: FirstMessage | None = FirstMessage()
        self._held: list[bytes] = []

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._end is None:  # past the first message: wait for `release`
            self._hold(data)
            return False, b""
        offset = self._end.feed(data)
        if offset is None:
            self._pending.hold(self._member, len(data))
            return self._reader.feed_data(data)
        self._end = None
        if offset < len(data):
            self._hold(data[offset:])
        return self._reader.feed_data(data[:offset])

    def feed_eof(self) -> None:
        self._reader.feed_eof()

    def _hold(self, data: bytes) -> None:
        # The transport, not the queue's flow control, is paused: reading the auth
        # message resumes the latter, and that must not let more bytes in here.
        self._held.append(data)
        self._transport.pause_reading()
        self._pending.hold(self._member, len(data))

    def next_message(self) -> list[bytes]:
        """Let one more message through, as the first one: returns what was held, to
        be fed again (it starts at that message's first byte); reading resumes."""
        held = self.release()
        self._end = FirstMessage()
        return held

    def release(self) -> list[bytes]:
        """What was held, in order; reading resumes (what is fed next goes in after it)."""
        held, self._held = self._held, []
        if not self._transport.is_closing():
            self._transport.resume_reading()
        return held


class Unauthenticated:
    """A socket upgraded without credentials, until `admitted` or `close`: its reader
    is held to the first message and it waits in `pending`."""

    __slots__ = ("_conn", "_held", "_pending")

    def __init__(self, conn: SocketPeer, pending: PendingAuth) -> None:
        """Call right after the upgrade, the socket's reader made with
        PREAUTH_READER_LIMIT."""
        self._conn = conn
        self._pending = pending
        pending.enter(conn, lambda: conn.close(CloseCode.TRY_AGAIN_LATER,
                                               "too many sockets waiting to authenticate"))
        ws = conn.ws
        self._held: HeldReader | None = HeldReader(ws.parser, ws.transport, pending, conn)
        ws.parser = self._held

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
        ws = self._conn.ws
        # It takes over at the first byte after the auth message, where HeldReader stopped.
        reader = ws.new_reader(max_message_bytes)
        held, self._held = self._held.release(), None
        ws.parser = reader
        for data in held:
            eof, _ = reader.feed_data(data)
            if eof:  # it gave up (bad input, or a close): the socket reads that next
                return

    def read_one_more(self) -> None:
        """Let the next message in at the first message's limit, the socket still
        unauthenticated (the Hocuspocus endpoint: each document authenticates apart,
        and one refused leaves the socket waiting for another). Bytes held again are
        counted again against the budget: an overestimate, never an underestimate."""
        if self._held is None:
            return
        held_reader = self._held
        for data in held_reader.next_message():
            eof, _ = held_reader.feed_data(data)
            if eof:  # it gave up (bad input, or a close): the socket reads that next
                return

    def close(self) -> None:
        self._pending.leave(self._conn)
