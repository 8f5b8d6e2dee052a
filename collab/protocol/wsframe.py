"""Server-to-client WebSocket frames (RFC 6455 section 5.2), built once and written to many sockets.

A broadcast is encoded a single time and the same frame bytes go to every
connection's transport. Server frames are never masked and collab never
negotiates permessage-deflate, so the bytes are identical for every peer.
"""

from __future__ import annotations

import struct

OPCODE_BINARY = 0x2
_FIN = 0x80


def binary_frame(payload: bytes) -> bytes:
    """One final, unmasked binary frame carrying `payload`."""
    length = len(payload)
    if length < 126:
        header = bytes((_FIN | OPCODE_BINARY, length))
    elif length < 65536:
        header = struct.pack("!BBH", _FIN | OPCODE_BINARY, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | OPCODE_BINARY, 127, length)
    return header + payload
