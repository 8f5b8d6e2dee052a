"""Every error collab reports to a peer, each with a stable code and an owner.

One registry, keyed by code: every error class carries its `code`, the HTTP
`status` it answers a request with and the WebSocket `close_code` it ends a
socket with, so the edges (gateway/http_errors.py, the socket handlers) map an
exception by reading it, never by a table of their own; `error_for` rebuilds one
from its code (an answer from another process).
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes collab sends (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    #: Never sent in a frame: the connection ended without one (RFC 6455 7.4.1).
    ABNORMAL_CLOSURE = 1006
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    #: Application codes (4000-4999), mirroring HTTP: the token expired or was revoked
    #: mid-session (get a new one and reconnect) / the client did something it may not.
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    #: The document was deleted (or replaced): drop the local copy before syncing again.
    DOCUMENT_DELETED = 4410
    #: The document is at its size quota (COLLAB_MAX_DOCUMENT_BYTES): nothing more fits.
    DOCUMENT_TOO_LARGE = 4413
    #: Past the connection's message or byte rate (gateway/ratelimit.py).
    RATE_LIMITED = 4429


class CollabError(Exception):
    """Base class: `code` is a stable machine-readable string; `status` and
    `close_code` say how an HTTP request or a socket ends with it."""

    code = "internal"
    status = 500
    close_code = CloseCode.INTERNAL_ERROR
    #: True when whoever raised it has logged the cause already (a bug in an actor).
    logged = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is not None:
            _BY_CODE.setdefault(code, cls)  # the first class to claim a code names it

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


#: Every error class by its code (the first one defined with that code).
_BY_CODE: dict[str, type[CollabError]] = {}


def error_for(code: str, message: str,
              default: type[CollabError] = CollabError) -> CollabError:
    """An error of the class registered for `code` (or `default`) saying `message`:
    what another process answered, as the exception a local call would raise."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return default(message, code=code)  # a code the raiser chose (an actor's own)
    try:
        return cls(message)
    except TypeError:  # a class that needs more than its message to be built
        error = default(message, code=code)
        error.status, error.close_code = cls.status, cls.close_code
        return error


class RemoteProtocolError(CollabError):
    """The peer sent bytes that do not follow the protocol (its fault, not ours)."""

    code = "protocol_error"
    close_code = CloseCode.PROTOCOL_ERROR
    #: The HTTP status when the same input came in an HTTP body.
    status = 400


class UnsupportedMessage(RemoteProtocolError):
    """Well-formed framing, but a message type or frame kind we do not accept."""

    code = "unsupported_message"
    close_code = CloseCode.UNSUPPORTED_DATA


class InvalidPayload(RemoteProtocolError):
    """The framing is fine but the payload is not valid (a rejected Yjs update, bad JSON)."""

    code = "invalid_payload"
    close_code = CloseCode.INVALID_PAYLOAD


class DocumentDeleted(InvalidPayload):
    """An update or state vector from a copy of a document made before the document
    was deleted or replaced: applying it would bring deleted content back
    (actors/incarnations.py)."""

    code = "document_deleted"
    status = 410
    close_code = CloseCode.DOCUMENT_DELETED


class MessageTooBig(RemoteProtocolError):
    code = "message_too_big"
    status = 413
    close_code = CloseCode.MESSAGE_TOO_BIG


class DocumentTooLarge(RemoteProtocolError):
    """An update would take a document past its size quota; nothing was applied."""

    code = "document_too_large"
    close_code = CloseCode.DOCUMENT_TOO_LARGE
    status = 413


class AwarenessTooLarge(RemoteProtocolError):
    """An awareness state over the size limit, or too many from one connection."""

    code = "awareness_too_large"
    close_code = CloseCode.MESSAGE_TOO_BIG


class BadRequest(CollabError):
    """An HTTP request we refuse: maps to 400 unless `status` says otherwise."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code)
        if status is not None:
            self.status = status


class DocumentNotFound(BadRequest):
    """Nothing is stored under this document name (never written, or deleted)."""

    code = "document_not_found"
    status = 404


class Unauthorized(BadRequest):
    """No token, or one we do not accept, where auth is configured: HTTP 401."""

    code = "unauthorized"
    close_code = CloseCode.UNAUTHORIZED
    status = 401


class Forbidden(BadRequest):
    """A valid token that does not grant this: HTTP 403 or a `forbidden` error frame."""

    code = "forbidden"
    close_code = CloseCode.FORBIDDEN
    status = 403


class ShuttingDown(CollabError):
    """The server is draining: the request was not handled; retry on another or later."""

    code = "shutting_down"
    status = 503
    close_code = CloseCode.SERVICE_RESTART


class StoreUnavailable(CollabError):
    """The store could not commit or load; nothing was acknowledged."""

    code = "store_unavailable"
    status = 503
    close_code = CloseCode.TRY_AGAIN_LATER


def store_error(error: BaseException, what: str) -> CollabError:
    """`error`, raised while reading from or writing to the store, as the requests
    waiting on it are told it: a CollabError as it is (the store's StoreUnavailable,
    OwnedElsewhere, ...), anything else as StoreUnavailable saying `what` failed: a
    passing condition (a lost connection, a lock, an I/O error), so they retry."""
    if isinstance(error, CollabError):
        return error
    return StoreUnavailable(f"{what}: {error}")


def close_code_for(exc: BaseException) -> int:
    """The WebSocket close code sent for `exc`: its own, or 1011 for a bug."""
    if isinstance(exc, CollabError):
        return exc.close_code
    return CloseCode.INTERNAL_ERROR
