"""Keep-alive for every open WebSocket on one timer: quiet sockets are pinged, and
those that stop answering are dropped.

aiohttp's own heartbeat keeps two timer handles per socket and starts a task per
ping: about 1 KiB per socket at 10,000 quiet ones (bench/idle_bench.py). Here one
sweep every half `COLLAB_PING_INTERVAL` serves them all. A socket
(gateway/websocket.py) notes that bytes arrived (`heard`); the sweep pings a socket
that was silent for a whole round, and drops it (no close frame: nobody would read
it) if the next round finds it silent still. So a silent peer is pinged after half
to one interval of silence and dropped half an interval after that ping; any frame
it sends meanwhile, a pong or anything else, keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from collab.gateway.socket_peer import SocketPeer

log = logging.getLogger(__name__)


class KeepAlive:
    """Every `interval / 2` seconds, pings the sockets of `connections` that were
    silent for a round and drops those silent since their ping. `interval` 0: off."""

    __slots__ = ("_connections", "_handle", "_round")

    def __init__(self, connections: Collection[SocketPeer], interval: float) -> None:
        self._connections = connections
        self._round = interval / 2
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._round > 0:
            self._handle = asyncio.get_running_loop().call_later(self._round, self.sweep)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def sweep(self) -> None:
        """One round (run by the timer; callable directly)."""
        if self._handle is not None:
            self.start()
        # A copy: a socket whose connection is lost meanwhile leaves the set, though
        # never within this loop (aborting one only schedules its connection_lost).
        for conn in tuple(self._connections):
            if conn.closed:
                continue
            ws = conn.ws
            if ws.heard:
                ws.heard = ws.pinged = False
            elif not ws.pinged:
                ws.pinged = True
                ws.ping()
            else:
                log.debug("%s: no answer to a ping within %g s, dropping", conn.id, self._round)
                conn.drop()
