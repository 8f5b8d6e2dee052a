"""The one error type the Python client raises for a refused or failed request.

`code` is machine-readable: the server's error codes (docs/protocol.md section 8,
and whatever an actor chooses, e.g. a room's `rate_limited`), plus three of the
client's own, as in client-js: `disconnected`, `closed` and `protocol`.
"""

from __future__ import annotations

from typing import Any

#: The socket dropped while the request was in flight: whether it ran is unknown
#: (room sends are resent instead; see Room.send).
DISCONNECTED = "disconnected"
#: The client, document or actor handle was closed before an answer could come.
CLOSED = "closed"
#: The server sent something this client cannot read.
PROTOCOL = "protocol"

#: Server codes that describe a passing condition (a restart, an owner moving
#: between processes, a store or Redis outage): trying again later is expected to
#: work, so handles retry rather than give up. The same set as client-js's.
TRANSIENT_CODES = frozenset({
    "shutting_down",
    "store_unavailable",
    "owned_elsewhere",
    "owner_unreachable",
    "cluster_unavailable",
    "call_timeout",
})


class CollabError(Exception):
    """A request the server refused, or one that could not be answered.

    Not `collab.errors.CollabError` (the server's own base class): a client
    process has no use for the server's modules and never imports them.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_response(cls, error: Any) -> CollabError:
        """The error carried by a failed response, `{"code", "message"}`; a
        response without a usable one is a `protocol` error."""
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return cls(code if isinstance(code, str) else PROTOCOL,
                   message if isinstance(message, str) else "the server refused the request")

    @property
    def transient(self) -> bool:
        """True for a passing condition on the server (TRANSIENT_CODES)."""
        return self.code in TRANSIENT_CODES


def closed_error(what: str) -> CollabError:
    """The error for requests that cannot be sent any more because `what` is gone."""
    return CollabError(CLOSED, f"{what} was closed")


def lost_connection(error: BaseException) -> bool:
    """True for `disconnected` and `closed`: nothing the caller did wrong, and
    nothing to report (the next socket tries again, or nobody is listening)."""
    return isinstance(error, CollabError) and error.code in (DISCONNECTED, CLOSED)
