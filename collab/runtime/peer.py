"""What an actor may do with a connected client: write frames and close it.

The gateway's WebSocket connection implements this protocol; actors depend on
it and never on aiohttp, so the runtime stays below the gateway layer.
"""

from __future__ import annotations

from typing import Protocol


class Peer(Protocol):
    #: Short identifier for logs (never a token or a user's name).
    id: str

    @property
    def closed(self) -> bool: ...

    def send_frame(self, frame: bytes) -> None:
        """Write one already-encoded WebSocket frame; never blocks, never raises.

        A peer that cannot keep up is dropped rather than slowing the sender.
        """

    def close(self, code: int, reason: str) -> None:
        """Close with a WebSocket close code; returns at once (the close runs in the background)."""
