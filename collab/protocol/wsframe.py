"""WebSocket frames (RFC 6455 section 5.2): server-to-client frames built once and written
to many sockets, and where a client's first message ends in the bytes it sends.

A broadcast is encoded a single time and the same frame bytes go to every
connection's transport. Server frames are never masked and collab never
negotiates permessage-deflate, so the bytes are identical for every peer.
`FirstMessage` reads only frame headers, never keeping a payload, so a socket
that has not authenticated can be held to its first message (gateway/preauth.py).
"""

from __future__ import annotations

import struct

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
#: Opcodes from here up are control frames (close, ping, pong), which may come
#: between the frames of a message and never end one.
_FIRST_CONTROL_OPCODE = 0x8
_FIN = 0x80
_MASKED = 0x80
_LENGTH = 0x7F
#: Bytes of extended payload length after a 7-bit length of 126 or 127.
_EXTENDED_LENGTH = {126: 2, 127: 8}
_MASK_KEY_BYTES = 4


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


class FirstMessage:
    """Where the first data message of a client's byte stream ends: feed it the bytes
    as they arrive. It reads frame headers only (payloads are counted, not kept) and
    leaves every check to the real reader: a header it cannot make sense of just
    makes the reader refuse the stream."""

    __slots__ = ("_final", "_header", "_left")

    def __init__(self) -> None:
        self._header = bytearray()  # the current frame's header, while incomplete
        self._left = 0  # payload bytes of the current frame still to come
        self._final = False  # whether the current frame ends the first data message

    def feed(self, data: bytes) -> int | None:
        """Take the next bytes of the stream: the offset in `data` just past the first
        message's last frame if it ends in `data`, else None (all of `data` belongs
        to it, or to control frames before it). Feed nothing more once it ended."""
        pos, end = 0, len(data)
        while pos < end:
            if self._left:
                step = min(self._left, end - pos)
                self._left -= step
                pos += step
            else:
                missing = _header_size(self._header) - len(self._header)
                self._header += data[pos:pos + missing]
                pos += min(missing, end - pos)
                if len(self._header) < _header_size(self._header):
                    continue  # the header goes on in a later read, or grew (extended length)
                self._start_frame()
            if not self._left and self._final:
                return pos
        return None

    def _start_frame(self) -> None:
        first, second = self._header[0], self._header[1]
        length = second & _LENGTH
        extra = _EXTENDED_LENGTH.get(length, 0)
        if extra:
            length = int.from_bytes(self._header[2:2 + extra], "big")
        self._final = bool(first & _FIN) and (first & 0x0F) < _FIRST_CONTROL_OPCODE
        self._left = length
        self._header = bytearray()


def _header_size(header: bytes | bytearray) -> int:
    """Bytes in a frame header that begins with `header` (2 until the length is known)."""
    if len(header) < 2:
        return 2
    second = header[1]
    return 2 + _EXTENDED_LENGTH.get(second & _LENGTH, 0) + (_MASK_KEY_BYTES if second & _MASKED
                                                            else 0)
