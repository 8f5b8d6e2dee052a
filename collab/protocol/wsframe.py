"""Server-to-client WebSocket frames (RFC 6455 section 5.2), built once and written to many sockets.

A broadcast is encoded a single time and the same frame bytes go to every
connection's transport. Server frames are never masked and collab never
negotiates permessage-deflate, so the bytes are identical for every peer.
"""

from __future__ import annotations

import struct

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
_FIN = 0x80


def _frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((_FIN | opcode, length))
    elif length < 65536:
        header = struct.pack("!BBH", _FIN | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, 127, length)
    return header + payload


def binary_frame(payload: bytes) -> bytes:
    """One final, unmasked binary frame carrying `payload`."""
    return _frame(OPCODE_BINARY, payload)


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame; `payload` must be UTF-8."""
    return _frame(OPCODE_TEXT, payload)
