"""Listening on the port and accepting connections, in collab's own accept loop.

asyncio's server (Python 3.11) answers an accept that fails for want of file
descriptors (EMFILE) by retrying it up to 128 times per wake-up, each failure a
logged traceback: megabytes of log a second while the loop has no time left to
answer anyone. Here an accept that fails stops this socket's accepting for a
while (0.1 s, doubling to 1 s while it keeps failing), closes the connection idle
longest to free a descriptor, and says so in the log at most once per 10 s. Each
accepted connection is counted in gateway/sockets.py (per address, and against
the process's descriptor limit, which is raised to its hard limit at start) and
handed to aiohttp behind a Guard.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import sys
from http import HTTPStatus

from aiohttp import web

from collab.gateway.sockets import Admit, Guard, Refusal, Sockets, canned_response
from collab.logs import Throttled

log = logging.getLogger(__name__)

#: Connections accepted per wake-up of a listening socket: enough to drain a burst
#: quickly (asyncio takes up to 128), few enough that one wake-up never holds the
#: loop for long. What is left is accepted on the next.
ACCEPT_BATCH = 32
#: Seconds a listening socket waits after a failed accept (out of descriptors or
#: memory), doubling while it keeps failing, up to ACCEPT_RETRY_MAX.
ACCEPT_RETRY_MIN = 0.1
ACCEPT_RETRY_MAX = 1.0
#: Idle connections closed when an accept fails for want of descriptors: room for
#: the connections waiting in the backlog, /healthz among them.
EVICT_ON_EMFILE = 16
#: File descriptors kept free for everything but client connections: the store
#: (SQLite's database, journal and shared memory for three connections; a Postgres
#: pool of up to 10), Redis, logs, and the accept in progress.
DESCRIPTOR_RESERVE = 64
#: Connections the kernel queues for us to accept (aiohttp's TCPSite default).
LISTEN_BACKLOG = 128
#: Accept errors that mean the process or the system is out of descriptors or memory.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def descriptor_limit() -> int:
    """The process's file descriptor limit, first raised to its hard limit (as Go
    programs do): a server of long-lived sockets needs more than the common 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the file descriptor limit from %d to %d: %s",
                        soft, hard, exc)
        else:
            soft = hard
    return sys.maxsize if soft == resource.RLIM_INFINITY else soft


def connection_capacity(limit: int) -> int:
    """Client connections a process with `limit` descriptors may hold."""
    return max(1, limit - DESCRIPTOR_RESERVE)


class Listener(web.BaseSite):
    """An aiohttp site on host:port (port 0: any free one, see `port`) whose
    connections `sockets` counts; `reuse_port` shares the port with sibling
    processes (SO_REUSEPORT)."""

    __slots__ = ("_accept_errors", "_connecting", "_host", "_listening", "_port",
                 "_retry_delays", "_retry_timers", "_reuse_port", "sockets")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, sockets: Sockets, *,
                 reuse_port: bool = False) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self.sockets = sockets
        self._listening: list[socket.socket] = []
        #: Per listening socket whose accepts fail: the last wait, and the timer ending it.
        self._retry_delays: dict[socket.socket, float] = {}
        self._retry_timers: dict[socket.socket, asyncio.TimerHandle] = {}
        self._connecting: set[asyncio.Task[None]] = set()
        self._accept_errors = Throttled(log)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port listened on (the real one once started, when 0 was asked for)."""
        for sock in self._listening:
            return sock.getsockname()[1]
        return self._port

    async def start(self) -> None:
        """Listen; raises OSError (an address in use, a host that does not resolve)."""
        await super().start()
        self._listening = _listen(self._host, self._port, self._reuse_port, self._backlog)
        loop = asyncio.get_running_loop()
        for sock in self._listening:
            loop.add_reader(sock.fileno(), self._accept, sock)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()
        for sock in self._listening:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._listening = []
        await super().stop()

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # gone before we took it
                continue
            except OSError as exc:
                self._accept_failed(listening, exc)
                return
            self._retry_delays.pop(listening, None)
            conn.setblocking(False)
            self._hand_over(conn, peer[0] if isinstance(peer, tuple) else "?")

    def _hand_over(self, conn: socket.socket, address: str) -> None:
        admit = self.sockets.admit(address)
        if admit is Admit.DROP:
            conn.close()
            return
        if admit is Admit.TOO_MANY:
            protocol: Guard | Refusal = Refusal(self.sockets, address, canned_response(
                HTTPStatus.TOO_MANY_REQUESTS, "too_many_connections", f"{address} already holds "
                f"{self.sockets.per_address.limit} connections, this server's limit "
                "(COLLAB_MAX_CONNECTIONS_PER_IP)"))
        else:
            protocol = Guard(self.sockets, address, self._runner.server())
        task = asyncio.ensure_future(self._connect(conn, protocol))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket, protocol: Guard | Refusal) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, conn)
        except Exception as exc:  # the peer reset it meanwhile, or we are stopping
            log.debug("could not set up a connection from %s: %r", protocol.address, exc)
            protocol.release()
            conn.close()

    def _accept_failed(self, listening: socket.socket, exc: OSError) -> None:
        """Stop accepting on `listening` for a while and free descriptors meanwhile."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(listening.fileno())
        delay = min(2 * self._retry_delays.get(listening, ACCEPT_RETRY_MIN / 2),
                    ACCEPT_RETRY_MAX)
        self._retry_delays[listening] = delay
        self.sockets.limited["accept_failed"] += 1
        evicted = self.sockets.evict(EVICT_ON_EMFILE) if exc.errno in _OUT_OF_RESOURCES else 0
        self._accept_errors.log(
            logging.ERROR, "cannot accept connections: %s (%d open; closed the %d idle "
            "longest; retrying in %g s)", exc, self.sockets.open, evicted, delay)
        self._retry_timers[listening] = loop.call_later(delay, self._resume, listening)

    def _resume(self, listening: socket.socket) -> None:
        del self._retry_timers[listening]
        asyncio.get_running_loop().add_reader(listening.fileno(), self._accept, listening)


def _listen(host: str, port: int, reuse_port: bool, backlog: int) -> list[socket.socket]:
    """Listening sockets for every address `host` resolves to, all on one port."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # its IPv4 twin, if any, has a socket of its own
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets

