"""The Hocuspocus wire format (`@hocuspocus/provider`), as pure functions over bytes.

Every frame but the connection-level Ping and Pong (one byte each) starts with a
routing key, a varString: the document name, or `name\\0sessionId` for a provider
with `sessionAwareness`. Then a varUint message type; types 0, 1 and 3 are the
y-websocket messages byte for byte (protocol/ywire.py), the others are
Hocuspocus's own. `parse` and `serialize` are inverses; no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from collab.errors import InvalidPayload, RemoteProtocolError, UnsupportedMessage
from collab.protocol import ywire
from collab.protocol.ywire import read_var_string, read_var_uint, write_var_bytes, write_var_uint

#: The routing key's separator between the document name and a provider's session id.
SESSION_SEPARATOR = "\0"
#: Characters of a routing key: a document name (128 at most, gateway/names.py),
#: the separator and a session id (the provider's is about 11).
MAX_KEY_CHARS = 128 + 1 + 64
#: Characters of a reason (PermissionDenied, Close) or of the provider version.
MAX_TEXT_CHARS = 1024
#: Characters of a token: a JWT with many claims, well under a message's size limit
#: (the `/ws` auth message allows 64 KiB too).
MAX_TOKEN_CHARS = 64 * 1024


class MessageType(IntEnum):
    """The varUint after the routing key (Hocuspocus's `MessageType`)."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SYNC_REPLY = 4  # server to client: a sync message that asks for no step 1 back
    STATELESS = 5
    BROADCAST_STATELESS = 6  # internal to Hocuspocus's servers, never on a client socket
    CLOSE = 7
    SYNC_STATUS = 8
    PING = 9
    PONG = 10


class AuthType(IntEnum):
    """The varUint after an AUTH message type."""

    TOKEN = 0
    PERMISSION_DENIED = 1
    AUTHENTICATED = 2


#: The scopes an Authenticated message grants (the provider's `AuthorizedScope`).
READ_WRITE = "read-write"
READ_ONLY = "readonly"
SCOPES = (READ_WRITE, READ_ONLY)


def _check_text(value: str, what: str, limit: int = MAX_TEXT_CHARS) -> None:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{what} must be a string of at most {limit} characters")


# ---------------------------------------------------------------------------
# messages (what follows the routing key)


@dataclass(frozen=True, slots=True)
class Auth:
    """Client to server: the token for one document (empty: none), and the provider's
    version (providers since 4.0 send it; None: an older provider)."""

    token: str
    version: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.token, "a token", MAX_TOKEN_CHARS)
        if self.version is not None:
            _check_text(self.version, "a provider version")


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Server to client: the document is open to it, with `scope`."""

    scope: str

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"a scope is one of {SCOPES}, not {self.scope!r}")


@dataclass(frozen=True, slots=True)
class PermissionDenied:
    """Server to client: the document is not open to it, and why."""

    reason: str

    def __post_init__(self) -> None:
        _check_text(self.reason, "a reason")


@dataclass(frozen=True, slots=True)
class Stateless:
    """Either way: an application's message about a document, never stored."""

    payload: str


@dataclass(frozen=True, slots=True)
class Close:
    """Client to server: stop serving me this document (the provider sends no reason).
    Server to client: this document is closed to you, and why."""

    reason: str = ""

    def __post_init__(self) -> None:
        _check_text(self.reason, "a reason")


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Server to client: an update of the client's was handled; `applied`: it is
    stored (collab sends it after the commit)."""

    applied: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """Connection level, no routing key: the provider answers with a Pong."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Connection level, no routing key: the answer to a Ping."""


Message = ywire.Message | Auth | Authenticated | PermissionDenied | Stateless | Close | SyncStatus


@dataclass(frozen=True, slots=True)
class Frame:
    """One message for one document: `key` is what the client named it by (the
    document name, or `name\\0sessionId`), echoed on everything sent back."""

    key: str
    message: Message

    def __post_init__(self) -> None:
        _check_text(self.key, "a routing key", MAX_KEY_CHARS)

    @property
    def document(self) -> str:
        """The document name: the key without a session id."""
        return self.key.partition(SESSION_SEPARATOR)[0]


# ---------------------------------------------------------------------------
# parse and serialize

_PING = bytes((MessageType.PING,))
_PONG = bytes((MessageType.PONG,))
#: Hocuspocus types whose body is a y-websocket message with the same type byte.
_YWIRE_TYPES = frozenset((MessageType.SYNC, MessageType.AWARENESS, MessageType.QUERY_AWARENESS))


def parse(frame: bytes) -> Frame | Ping | Pong:
    """Parse one frame of the Hocuspocus protocol.

    Raises RemoteProtocolError for malformed bytes (truncated, trailing bytes, a key
    too long: close 1002), UnsupportedMessage for an unknown message type (1003)
    and InvalidPayload for text that is not UTF-8 (1007).
    """
    if frame == _PING:  # a key of 9 or 10 bytes needs more than one byte after it
        return Ping()
    if frame == _PONG:
        return Pong()
    key, pos = read_var_string(frame, 0)
    if len(key) > MAX_KEY_CHARS:
        raise RemoteProtocolError(f"a routing key longer than {MAX_KEY_CHARS} characters")
    kind, body = read_var_uint(frame, pos)
    if kind in _YWIRE_TYPES:
        return Frame(key, ywire.parse(frame[pos:]))
    if kind == MessageType.AUTH:
        message: Message = _parse_auth(frame, body)
    elif kind == MessageType.STATELESS:
        payload, end = read_var_string(frame, body)
        _expect_end(frame, end)
        message = Stateless(payload)
    elif kind == MessageType.CLOSE:
        reason = ""
        if body < len(frame):
            reason, end = _read_text(frame, body, "a close reason")
            _expect_end(frame, end)
        message = Close(reason)
    elif kind == MessageType.SYNC_STATUS:
        applied, end = read_var_uint(frame, body)  # lib0 writes it as a varUint 0 or 1
        if applied > 1:
            raise InvalidPayload(f"a sync status is 0 or 1, not {applied}")
        _expect_end(frame, end)
        message = SyncStatus(applied == 1)
    else:
        raise UnsupportedMessage(f"unknown Hocuspocus message type {kind}")
    return Frame(key, message)


def _parse_auth(frame: bytes, pos: int) -> Auth | Authenticated | PermissionDenied:
    sub, pos = read_var_uint(frame, pos)
    if sub == AuthType.TOKEN:
        token, pos = _read_text(frame, pos, "a token", MAX_TOKEN_CHARS)
        version = None
        if pos < len(frame):
            version, pos = _read_text(frame, pos, "a provider version")
        _expect_end(frame, pos)
        return Auth(token, version)
    if sub == AuthType.PERMISSION_DENIED:
        reason, pos = _read_text(frame, pos, "a reason")
        _expect_end(frame, pos)
        return PermissionDenied(reason)
    if sub == AuthType.AUTHENTICATED:
        scope, pos = read_var_string(frame, pos)
        _expect_end(frame, pos)
        if scope not in SCOPES:
            raise InvalidPayload(f"unknown scope {scope[:40]!r}")
        return Authenticated(scope)
    raise UnsupportedMessage(f"unknown auth message type {sub}")


def _read_text(frame: bytes, pos: int, what: str,
               limit: int = MAX_TEXT_CHARS) -> tuple[str, int]:
    text, pos = read_var_string(frame, pos)
    if len(text) > limit:
        raise RemoteProtocolError(f"{what} longer than {limit} characters")
    return text, pos


def _expect_end(frame: bytes, pos: int) -> None:
    if pos != len(frame):
        raise RemoteProtocolError("trailing bytes after message")


def _var_string(text: str) -> bytes:
    return write_var_bytes(text.encode("utf-8"))


def serialize(frame: Frame | Ping | Pong) -> bytes:
    """Encode one message as the bytes of one WebSocket frame."""
    if isinstance(frame, Ping):
        return _PING
    if isinstance(frame, Pong):
        return _PONG
    return _var_string(frame.key) + serialize_body(frame.message)


def serialize_body(message: Message) -> bytes:
    """What follows the routing key for `message`."""
    kind = type(message)
    if kind is Auth:
        version = b"" if message.version is None else _var_string(message.version)
        return bytes((MessageType.AUTH, AuthType.TOKEN)) + _var_string(message.token) + version
    if kind is Authenticated:
        return bytes((MessageType.AUTH, AuthType.AUTHENTICATED)) + _var_string(message.scope)
    if kind is PermissionDenied:
        return bytes((MessageType.AUTH, AuthType.PERMISSION_DENIED)) + \
            _var_string(message.reason)
    if kind is Stateless:
        return write_var_uint(MessageType.STATELESS) + _var_string(message.payload)
    if kind is Close:  # the provider reads a reason whatever it is: always one
        return write_var_uint(MessageType.CLOSE) + _var_string(message.reason)
    if kind is SyncStatus:
        return bytes((MessageType.SYNC_STATUS, 1 if message.applied else 0))
    return ywire.serialize(message)  # type: ignore[arg-type]  # raises TypeError if not one


def prefix(key: str) -> bytes:
    """The routing key as it starts every frame for `key`: prepend it to a y-websocket
    frame's bytes to get the Hocuspocus frame."""
    return _var_string(key)
