"""A client socket as an actor sees it: send it Yjs messages or native messages, or
close it.

Both WebSocket endpoints implement this (and a socket on another process has a
stand-in that does, cluster/fanout.py): `/yjs` writes the raw y-websocket frame,
`/ws` wraps a Yjs message in a native event and writes native messages (actor
events, answers) as they are. Actors depend on this protocol and never on
aiohttp, so the runtime stays below the gateway layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from collab.protocol.native import Outgoing, YjsOut


class Peer(Protocol):
    #: Short identifier for logs (never a token or a user's name).
    id: str
    #: True if the peer learns that its updates are saved only by getting them back
    #: after the commit (y-websocket); False if it gets an explicit answer (`/ws`).
    echo_ack: bool

    @property
    def closed(self) -> bool: ...

    def send_yjs(self, out: YjsOut) -> None:
        """Write one Yjs message, framed for this peer's protocol; never blocks or raises.

        A peer that cannot keep up is dropped rather than slowing the sender.
        """

    def send_sync(self, out: YjsOut) -> None:
        """Like `send_yjs`, for a message the peer asked for to catch up (the state it
        lacks, who is here): while unread it does not count as slow consumption (up
        to one document's worth), so a newcomer is never dropped for its size."""

    def send_out(self, out: Outgoing) -> None:
        """Write one native message (an actor's event); never blocks, never raises.
        A `/yjs` socket speaks y-websocket only and has no frame for it: it drops it
        (no actor sends one there: a `/yjs` socket connects to no actor)."""

    def close(self, code: int, reason: str) -> None:
        """Close with a WebSocket close code; returns at once (the close runs in the background)."""


@dataclass(frozen=True, slots=True)
class PeerGone:
    """A peer went away without saying goodbye (its process died, say): forget it."""

    peer: Any
