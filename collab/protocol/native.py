"""The native protocol's wire format: one message per frame, msgpack in binary
frames, the same message as JSON in text frames. Pure: no I/O.

`decode` turns a client frame into a dict and checks the envelope only (a map
with a string `op`); the gateway checks each op's fields. `Outgoing` is a
server message encoded at most once per format, so a broadcast costs one
encoding however many sockets receive it. docs/protocol.md is the reference.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from collab.errors import RemoteProtocolError
from collab.protocol import hocuspocus, ywire
from collab.protocol.codec import pack, unpack_client
from collab.protocol.text import InvalidText, check_strings, json_may_hold_surrogates
from collab.protocol.wsframe import binary_frame, text_frame

#: Request fields that carry bytes: raw in msgpack, base64 strings in JSON.
BINARY_FIELDS = ("sv", "update")

MAX_ID_LENGTH = 64


class MalformedMessage(RemoteProtocolError):
    """A frame that is not one message of the protocol (not msgpack/JSON, not a map...)."""

    code = "malformed"


def decode(data: bytes | str) -> dict[str, Any]:
    """One client message from a binary (msgpack) or text (JSON) frame.

    Raises MalformedMessage; when the frame was a map with a usable `id`, the
    error carries it (`request_id`) so the answer can name the request.
    """
    binary = isinstance(data, bytes)
    try:
        if binary:
            message = unpack_client(data)
        else:
            message = json.loads(data)
    except Exception as exc:  # msgpack and json raise many kinds for bad input
        kind = "msgpack" if binary else "JSON"
        raise MalformedMessage(f"frame is not valid {kind}: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("a message must be a map (a JSON object)")
    request_id = message.get("id")
    if request_id is not None and not (
        (isinstance(request_id, int) and not isinstance(request_id, bool))
        or (isinstance(request_id, str) and len(request_id) <= MAX_ID_LENGTH)
    ):
        raise MalformedMessage(f'"id" must be an integer or a string of at most '
                               f"{MAX_ID_LENGTH} characters")
    op = message.get("op")
    if not isinstance(op, str):
        error = MalformedMessage('a message needs "op", a string')
        error.request_id = request_id  # type: ignore[attr-defined]
        raise error
    if not binary and json_may_hold_surrogates(data):  # msgpack's strings are UTF-8 already
        try:
            check_strings(message, "the message")
        except InvalidText as exc:
            error = MalformedMessage(exc.message, code=exc.code)
            error.request_id = request_id  # type: ignore[attr-defined]
            raise error from None
    if not binary:
        for name in BINARY_FIELDS:
            value = message.get(name)
            if isinstance(value, str):
                try:
                    message[name] = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    error = MalformedMessage(f'"{name}" is not valid base64')
                    error.request_id = request_id  # type: ignore[attr-defined]
                    raise error from None
    return message


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Outgoing:
    """One server message, framed for binary (msgpack) or text (JSON) sockets on demand."""

    __slots__ = ("_binary", "_text", "message")

    def __init__(self, message: dict[str, Any], *, packed: bytes | None = None) -> None:
        self.message = message
        self._binary = binary_frame(packed) if packed is not None else None
        self._text: bytes | None = None

    def __repr__(self) -> str:
        return f"<Outgoing {self.message!r:.80}>"

    def frame(self, binary: bool) -> bytes:
        """The WebSocket frame for a socket speaking msgpack (`binary`) or JSON.
        Raises TypeError or ValueError if the message cannot be encoded."""
        if binary:
            if self._binary is None:
                self._binary = binary_frame(pack(self.message))
            return self._binary
        if self._text is None:
            self._text = text_frame(json.dumps(
                self.message, default=_json_default, separators=(",", ":"),
                ensure_ascii=False, allow_nan=False).encode())
        return self._text


def response(request_id: Any, result: Any = None) -> Outgoing:
    return Outgoing({"id": request_id, "ok": True, "result": result})


def error(request_id: Any, code: str, message: str) -> Outgoing:
    return Outgoing({"id": request_id, "ok": False, "error": {"code": code, "message": message}})


def actor_event(kind: str, key: str, name: str, data: Any) -> Outgoing:
    """An actor's event. Encoded to msgpack at once, so data that cannot be sent
    fails in the actor code that sent it (TypeError), not later on a socket."""
    message = {"event": "actor.event", "actor": kind, "key": key, "name": name, "data": data}
    return Outgoing(message, packed=pack(message))


class YjsOut:
    """One y-websocket message for one document, framed for every kind of socket:
    raw (the `/yjs` endpoint), wrapped in a native event (`/ws`) and behind a
    routing key (the Hocuspocus endpoint)."""

    __slots__ = ("_keyed", "_native", "_raw", "doc", "message")

    def __init__(self, doc: str, message: ywire.Message) -> None:
        self.doc = doc
        self.message = message
        self._raw: bytes | None = None
        self._native: Outgoing | None = None
        self._keyed: tuple[str, bytes] | None = None  # the last Hocuspocus frame built

    def keyed_frame(self, key: str) -> bytes:
        """The Hocuspocus frame for routing key `key`; a broadcast builds it once for
        the sockets sharing a key (every provider without a session id)."""
        keyed = self._keyed
        if keyed is None or keyed[0] != key:
            frame = binary_frame(hocuspocus.prefix(key) + ywire.serialize(self.message))
            self._keyed = keyed = (key, frame)
        return keyed[1]

    def raw_frame(self) -> bytes:
        if self._raw is None:
            self._raw = binary_frame(ywire.serialize(self.message))
        return self._raw

    def native(self) -> Outgoing:
        if self._native is None:
            message = self.message
            if type(message) is ywire.AwarenessMessage:
                fields = {"event": "doc.awareness", "doc": self.doc, "update": message.payload}
            elif isinstance(message, ywire.SyncUpdate | ywire.SyncStep2):
                fields = {"event": "doc.update", "doc": self.doc, "update": message.update}
            else:
                raise ValueError(f"{type(message).__name__} has no native event")
            self._native = Outgoing(fields)
        return self._native
