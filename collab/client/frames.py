"""Protocol messages to and from WebSocket frames, with no I/O.

The client always sends MessagePack in binary frames, so the server answers and
sends its events in MessagePack too (docs/protocol.md section 2) and Yjs updates
and state vectors travel as raw `bin`, not base64. The codec is the server's own
(collab.protocol.codec), so both ends agree on every type.
"""

from __future__ import annotations

from typing import Any

from collab.client.errors import PROTOCOL, CollabError
from collab.protocol.codec import pack, unpack


def encode_message(message: dict[str, Any]) -> bytes:
    """The MessagePack bytes of one protocol message. Raises TypeError (or
    ValueError) for a value MessagePack cannot carry."""
    return pack(message)


def decode_message(data: bytes | str) -> dict[str, Any]:
    """One received frame as a message (a map). Raises CollabError(`protocol`) for a
    text frame (this client never asks for JSON), bytes that are not MessagePack,
    or anything but a map."""
    if isinstance(data, str):
        raise CollabError(PROTOCOL, "received a text frame; this client only speaks MessagePack")
    try:
        message = unpack(data)
    except Exception as exc:  # msgpack raises many kinds for bad bytes
        raise CollabError(PROTOCOL, f"received a frame that is not MessagePack: {exc}") from None
    if not isinstance(message, dict):
        raise CollabError(PROTOCOL, "received a frame that is not a map")
    return message
