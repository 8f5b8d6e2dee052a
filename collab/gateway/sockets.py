"""Every TCP connection the process holds, from accept to close: how many each address
has, which sit idle, and how long and how large a connection's first request may be.

gateway/listener.py accepts the connections and hands each to `Sockets.admit`. A
connection must send its first request head within COLLAB_HEADER_TIMEOUT and in at
most COLLAB_MAX_HEADER_BYTES (else it is closed; 431 for the size), then aiohttp's
keep-alive timeout (COLLAB_KEEPALIVE_TIMEOUT) bounds its idle time between requests.
With auth on, a response to a request that did not authenticate closes the
connection, so a connection that has not proved who it is sends one head, and that
one is bounded. One address may hold COLLAB_MAX_CONNECTIONS_PER_IP connections (past
it: 429), counted here when the TCP peer is the client (no proxy hops configured).
The process holds at most `capacity` connections, its descriptor limit less a
reserve; past that the connection idle longest (no request in progress) is closed
to make room (else the one waiting longest to authenticate), so idle sockets cannot
stop the server answering. A connection still sending its first head has not
authenticated: what it sent so far counts against COLLAB_MAX_PREAUTH_BYTES
(gateway/preauth.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from enum import Enum
from http import HTTPStatus

from aiohttp import web

from collab.gateway.addresses import ConnectionsPerAddress, TooManyConnections
from collab.gateway.app_keys import GATEKEEPER
from collab.gateway.http_auth import PRINCIPAL
from collab.gateway.preauth import PendingAuth
from collab.logs import Throttled

log = logging.getLogger(__name__)

#: Seconds a refused connection is kept after its answer was written, for the client
#: to read it before the close (closing at once could reset it away); bounded, as a
#: flood of refused connections must not hold descriptors.
REFUSAL_LINGER = 1.0
_HEAD_END = b"\r\n\r\n"
#: Why a connection limit acted, for the metric collab_connection_limits_total: refused
#: at accept (its address's limit; the process full with nothing idle), closed (idle,
#: to make room; no head in time; a head too large), or an accept that failed.
LIMIT_REASONS = ("too_many_connections", "full", "idle_closed", "header_timeout",
                 "header_too_large", "accept_failed")


class Admit(Enum):
    SERVE = "serve"
    #: Past the address's limit: answered 429 `too_many_connections`, then closed.
    TOO_MANY = "too many"
    #: The process is full and nothing is idle: closed at once, unanswered.
    DROP = "drop"


class Sockets:
    """The connections of one listening server, at most `capacity`, and those of each
    address at most `per_address.limit`."""

    def __init__(self, capacity: int, per_address: ConnectionsPerAddress, pending: PendingAuth,
                 *, header_timeout: float, max_header_bytes: int) -> None:
        self.capacity = capacity
        self.per_address = per_address
        #: Connections still sending their first request head are waiting to
        #: authenticate, like `/ws` sockets waiting for their auth message: one budget.
        self.pending = pending
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.open = 0
        #: How often each limit acted since start, by LIMIT_REASONS.
        self.limited: Counter[str] = Counter()
        #: Connections without a request in progress, the one idle longest first.
        self._idle: dict[Tracked, None] = {}
        self._full = Throttled(log)
        self._too_many = Throttled(log)
        self.bad_heads = Throttled(log)

    def admit(self, address: str) -> Admit:
        """Count a connection just accepted from `address` (`release` it when it ends,
        unless DROP: then close it at once). At capacity, closes the connection idle
        longest to make room, or else the one waiting longest to authenticate."""
        if self.open >= self.capacity and not self.evict(1) and not self.pending.evict_oldest():
            self._full.log(logging.WARNING, "%d connections open, all busy: refusing new ones "
                           "(the process's descriptor limit leaves room for %d; raise it "
                           "with `ulimit -n`, or LimitNOFILE= under systemd)", self.open,
                           self.capacity)
            self.limited["full"] += 1
            return Admit.DROP
        self.open += 1
        try:
            self.per_address.enter(address)
        except TooManyConnections:
            self._too_many.log(logging.WARNING, "%s already holds %d connections, this "
                               "server's limit (COLLAB_MAX_CONNECTIONS_PER_IP): refusing more "
                               "with 429", address, self.per_address.limit)
            self.limited["too_many_connections"] += 1
            return Admit.TOO_MANY
        return Admit.SERVE

    def release(self, conn: Tracked) -> None:
        self.open -= 1
        self._idle.pop(conn, None)
        if conn.served:
            self.per_address.leave(conn.address)

    def idle(self, conn: Tracked) -> None:
        """`conn` has no request in progress from now on (the newest idle one)."""
        self._idle.pop(conn, None)
        self._idle[conn] = None

    def busy(self, conn: Tracked) -> None:
        self._idle.pop(conn, None)

    def evict(self, count: int) -> int:
        """Close up to `count` of the connections idle longest; how many there were."""
        evicted = 0
        while evicted < count and self._idle:
            conn = next(iter(self._idle))
            del self._idle[conn]
            conn.evict()
            evicted += 1
        self.limited["idle_closed"] += evicted
        return evicted


#: The listening server's connections, when collab's own Listener serves the app.
SOCKETS = web.AppKey("sockets", Sockets)


class Tracked(asyncio.Protocol):
    """A connection `Sockets` counts, until `release` (at its end, or if it never began)."""

    __slots__ = ("_released", "address", "sockets", "transport")

    served = False

    def __init__(self, sockets: Sockets, address: str) -> None:
        self.sockets = sockets
        self.address = address
        self.transport: asyncio.Transport | None = None
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.sockets.release(self)

    def evict(self) -> None:
        """Close it to make room (it has no request in progress)."""
        if self.transport is not None:
            self.transport.close()


class Guard(Tracked):
    """An accepted connection served by aiohttp's request handler (`inner`): holds it to
    its first head's deadline and size, and tells `Sockets` when it is idle."""

    __slots__ = ("_deadline", "_head_bytes", "_reading_head", "_refused", "_requests", "_tail",
                 "inner")

    served = True

    def __init__(self, sockets: Sockets, address: str, inner: asyncio.Protocol) -> None:
        super().__init__(sockets, address)
        self.inner = inner
        self._head_bytes = 0  # of the first head, until its end is seen
        self._tail = b""  # the last bytes read, in case its end spans two reads
        self._reading_head = True
        self._deadline: asyncio.TimerHandle | None = None
        self._requests = 0  # in progress (one at a time on HTTP/1.1)
        self._refused = False  # answered 431: what it sends meanwhile is read and dropped

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sockets.idle(self)
        self.sockets.pending.enter(self, transport.close)
        self._deadline = asyncio.get_running_loop().call_later(
            self.sockets.header_timeout, self._too_slow)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._refused or (self._reading_head and not self._count_head(data)):
            return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_read()
        self.release()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def upgraded(self, websocket: asyncio.Protocol) -> None:
        """The connection is a WebSocket now, served by `websocket` (gateway/websocket.py)
        instead of aiohttp: it gets the bytes, and the connection is busy to its end."""
        self.inner = websocket
        self._requests += 1  # never done: a WebSocket is never idle to evict

    def request_started(self, task: asyncio.Task) -> None:
        """A request is in progress until `task` (aiohttp's for it, which writes the
        whole response before it ends) is done."""
        self._head_read()
        self._requests += 1
        self.sockets.busy(self)
        task.add_done_callback(self._request_done)

    def _request_done(self, _: asyncio.Task) -> None:
        self._requests -= 1
        if not self._requests and not self._released:
            self.sockets.idle(self)

    def _count_head(self, data: bytes) -> bool:
        """Count `data` against the first head's size; False if it was too large (the
        connection is then answered 431 and closed)."""
        seam = (self._tail + data[:len(_HEAD_END) - 1]).find(_HEAD_END)
        if seam >= 0:
            end = seam + len(_HEAD_END) - len(self._tail)
        else:
            found = data.find(_HEAD_END)
            end = found + len(_HEAD_END) if found >= 0 else -1
        self._head_bytes += len(data) if end < 0 else end
        if end < 0:  # held until the rest comes
            self.sockets.pending.hold(self, len(data))
        if self._head_bytes > self.sockets.max_header_bytes:
            self.sockets.bad_heads.log(logging.INFO, "%s: a request head over %d bytes "
                                       "(COLLAB_MAX_HEADER_BYTES): 431, closing", self.address,
                                       self.sockets.max_header_bytes)
            self._head_read()
            self.sockets.limited["header_too_large"] += 1
            self.transport.write(canned_response(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header_too_large",
                f"a request head is at most {self.sockets.max_header_bytes} bytes"))
            # A lingering close: the answer, then our end of the stream, while what the
            # client still sends is read and dropped for a moment. Closing at once with
            # its bytes unread would reset the connection, and the reset can reach the
            # client before the answer does.
            self._refused = True
            self.transport.write_eof()
            asyncio.get_running_loop().call_later(REFUSAL_LINGER, self.transport.close)
            return False
        if end >= 0:
            self._head_read()
        else:
            self._tail = (self._tail + data)[-(len(_HEAD_END) - 1):]
        return True

    def _head_read(self) -> None:
        """The first head is complete (or the connection is over): no deadline, no
        place among the connections waiting to authenticate."""
        if not self._reading_head:
            return
        self._reading_head = False
        self._tail = b""
        self.sockets.pending.leave(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self._reading_head:
            self.sockets.bad_heads.log(logging.INFO, "%s: no request head within %g s "
                                       "(COLLAB_HEADER_TIMEOUT): closing", self.address,
                                       self.sockets.header_timeout)
            self.sockets.limited["header_timeout"] += 1
            self.transport.close()


class Refusal(Tracked):
    """A connection refused at accept: answered with `response` at once (before its
    request is read: the answer is the same whatever it asks), closed soon after."""

    __slots__ = ("_linger", "response")

    def __init__(self, sockets: Sockets, address: str, response: bytes) -> None:
        super().__init__(sockets, address)
        self.response = response
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sockets.idle(self)  # the first to go if room is needed
        self.transport.write(self.response)
        self._linger = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request: already answered

    def eof_received(self) -> bool:
        return False  # the client read the answer and is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        self.release()


def canned_response(status: HTTPStatus, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response with collab's JSON error body, closing the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def guard_of(request: web.Request) -> Guard | None:
    """The Guard of the connection `request` came on, if a Listener accepted it."""
    transport = request.transport
    guard = transport.get_protocol() if transport is not None else None
    return guard if isinstance(guard, Guard) else None


def request_started(request: web.Request) -> None:
    """Tell the connection's Guard (when a Listener accepted it) that a request is in
    progress until the current task ends."""
    guard = guard_of(request)
    if guard is not None:
        guard.request_started(asyncio.current_task())


def close_unless_authenticated(request: web.Request, response: web.StreamResponse) -> None:
    """With auth on, the connection closes after answering a request that did not
    authenticate: an unproven client sends one bounded head per connection."""
    if request.app[GATEKEEPER].enabled and request.get(PRINCIPAL) is None:
        response.force_close()
