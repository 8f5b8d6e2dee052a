"""The y-websocket wire format (y-protocols sync + awareness), as pure functions over bytes.

One WebSocket frame carries exactly one message. `parse` turns a frame into a
frozen message object or raises a `RemoteProtocolError` subclass; `serialize`
does the reverse. No I/O here: this module is what the fuzz tests drive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from collab.errors import InvalidPayload, RemoteProtocolError, UnsupportedMessage

#: lib0 varUints above 2**53 cannot be represented by JS clients; refuse them.
MAX_VAR_UINT_BITS = 53


class MessageType(IntEnum):
    """Top-level message type, the first varUint of every frame (y-websocket)."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    """Second varUint of a SYNC message (y-protocols/sync)."""

    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


# ---------------------------------------------------------------------------
# lib0 encoding primitives


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a lib0 varUint at `pos`; returns (value, next position).

    Raises RemoteProtocolError on truncation or a value wider than 53 bits.
    """
    value = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise RemoteProtocolError("truncated varUint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> MAX_VAR_UINT_BITS:  # the last byte may still carry bits past 53
                raise RemoteProtocolError("varUint wider than 53 bits")
            return value, pos
        shift += 7
        if shift >= MAX_VAR_UINT_BITS:
            raise RemoteProtocolError("varUint wider than 53 bits")


def write_var_uint(value: int) -> bytes:
    """Encode a non-negative int as a lib0 varUint."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """Decode a length-prefixed byte string; returns (bytes, next position)."""
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise RemoteProtocolError("truncated byte string")
    return data[pos:end], end


def write_var_bytes(payload: bytes) -> bytes:
    return write_var_uint(len(payload)) + payload


def read_var_string(data: bytes, pos: int) -> tuple[str, int]:
    raw, pos = read_var_bytes(data, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise InvalidPayload("string is not valid UTF-8") from exc


# ---------------------------------------------------------------------------
# messages


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """"Here is my state vector; send me what I am missing." """

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The reply to step 1: a Yjs v1 update with everything the peer lacks."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental Yjs v1 update."""

    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    """An encoded awareness update (see `decode_awareness`)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """Ask the server for every awareness state it knows."""


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness

#: A Yjs v1 update with no structs and an empty delete set: what a client that
#: has nothing new sends as its sync step 2.
EMPTY_UPDATE = b"\x00\x00"
#: A Yjs v1 state vector with no clients: "I have nothing, send me everything".
EMPTY_STATE_VECTOR = b"\x00"


def changes_document(message: Message) -> bool:
    """Whether `message` carries document content (a non-empty step 2 or update),
    as opposed to a handshake, an empty step 2 or awareness."""
    return isinstance(message, SyncStep2 | SyncUpdate) and message.update != EMPTY_UPDATE


_SYNC_CLASSES = {SyncType.STEP1: SyncStep1, SyncType.STEP2: SyncStep2, SyncType.UPDATE: SyncUpdate}


def parse(frame: bytes) -> Message:
    """Parse one y-websocket frame.

    Raises RemoteProtocolError for malformed bytes (close 1002) and
    UnsupportedMessage for unknown or server-only message types (close 1003).
    Trailing bytes after a complete message are a protocol error: exactly one
    message per frame.
    """
    kind, pos = read_var_uint(frame, 0)
    if kind == MessageType.SYNC:
        sub, pos = read_var_uint(frame, pos)
        cls = _SYNC_CLASSES.get(sub)  # type: ignore[call-overload]
        if cls is None:
            raise UnsupportedMessage(f"unknown sync message type {sub}")
        payload, pos = read_var_bytes(frame, pos)
        message: Message = cls(payload)
    elif kind == MessageType.AWARENESS:
        payload, pos = read_var_bytes(frame, pos)
        message = AwarenessMessage(payload)
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == MessageType.AUTH:
        raise UnsupportedMessage("auth messages are sent by servers, not clients")
    else:
        raise UnsupportedMessage(f"unknown message type {kind}")
    if pos != len(frame):
        raise RemoteProtocolError("trailing bytes after message")
    return message


def serialize(message: Message) -> bytes:
    """Encode a message as the bytes of one frame."""
    if isinstance(message, SyncStep1):
        return b"\x00\x00" + write_var_bytes(message.state_vector)
    if isinstance(message, SyncStep2):
        return b"\x00\x01" + write_var_bytes(message.update)
    if isinstance(message, SyncUpdate):
        return encode_update(message.update)
    if isinstance(message, AwarenessMessage):
        return b"\x01" + write_var_bytes(message.payload)
    if isinstance(message, QueryAwareness):
        return b"\x03"
    raise TypeError(f"not a y-websocket message: {message!r}")


def encode_update(update: bytes) -> bytes:
    """The hot-path encoder for a sync UPDATE frame."""
    return b"\x00\x02" + write_var_uint(len(update)) + update


# ---------------------------------------------------------------------------
# awareness payloads (y-protocols/awareness)


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness state. `state` is the JSON text; "null" means removed."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == "null"


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update; every state must be valid JSON (else InvalidPayload),
    because it is relayed to browsers that will `JSON.parse` it."""
    count, pos = read_var_uint(payload, 0)
    entries = []
    for _ in range(count):
        client_id, pos = read_var_uint(payload, pos)
        clock, pos = read_var_uint(payload, pos)
        state, pos = read_var_string(payload, pos)
        try:
            json.loads(state)
        except (ValueError, RecursionError) as exc:  # deep nesting in a state, too
            raise InvalidPayload("awareness state is not valid JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    if pos != len(payload):
        raise RemoteProtocolError("trailing bytes after awareness update")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        raw = entry.state.encode("utf-8")
        parts += (write_var_uint(entry.client_id), write_var_uint(entry.clock),
                  write_var_uint(len(raw)), raw)
    return b"".join(parts)


# ---------------------------------------------------------------------------
# state vectors


def encode_state_vector(vector: dict[int, int]) -> bytes:
    """Encode {client id: clock} as a Yjs v1 state vector (clients in descending
    order, as Yjs writes them)."""
    out = [write_var_uint(len(vector))]
    for client in sorted(vector, reverse=True):
        out += (write_var_uint(client), write_var_uint(vector[client]))
    return b"".join(out)


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Decode a Yjs v1 state vector into {client id: clock}."""
    count, pos = read_var_uint(data, 0)
    vector = {}
    for _ in range(count):
        client, pos = read_var_uint(data, pos)
        clock, pos = read_var_uint(data, pos)
        vector[client] = clock
    if pos != len(data):
        raise RemoteProtocolError("trailing bytes after state vector")
    return vector
