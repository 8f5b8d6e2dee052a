"""What a document actor may do with a connected client: send Yjs messages, or close it.

Both WebSocket endpoints implement this: `/yjs` writes the raw y-websocket
frame, `/ws` wraps the message in a native event. Actors depend on this
protocol and never on aiohttp, so the runtime stays below the gateway layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from collab.protocol.native import YjsOut


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

    def close(self, code: int, reason: str) -> None:
        """Close with a WebSocket close code; returns at once (the close runs in the background)."""


@dataclass(frozen=True, slots=True)
class PeerGone:
    """A peer went away without saying goodbye (its process died, say): forget it."""

    peer: Any
