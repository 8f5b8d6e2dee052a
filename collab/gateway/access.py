"""Who is knocking, before a WebSocket upgrade: the Origin allowlist and the client's token.

Finds the token in the `token` query parameter (what y-websocket's `params`
sends) or in a `collab-token.<jwt>` subprotocol, verifies it (collab/auth.py) and
answers with the Principal, or raises Unauthorized (401) / Forbidden (403).
With no key configured (development mode) everyone gets an unrestricted principal.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import hdrs, web

from collab.auth import AuthError, Principal, Verifier, development_principal
from collab.config import Settings
from collab.errors import Forbidden, Unauthorized

#: The subprotocol prefix carrying a token: browsers cannot set an Authorization
#: header on a WebSocket, but they can offer subprotocols.
TOKEN_SUBPROTOCOL_PREFIX = "collab-token."
TOKEN_QUERY_PARAMETER = "token"
ANY_ORIGIN = "*"


@dataclass(frozen=True, slots=True)
class Admission:
    """A client let in: who it is, and the subprotocol to echo (None: none offered)."""

    principal: Principal
    subprotocol: str | None = None


class Gatekeeper:
    """The access policy of one server, built once from its settings."""

    def __init__(self, settings: Settings) -> None:
        self.verifier = (Verifier(settings.secret, settings.jwt_public_key)
                         if settings.auth_enabled else None)
        self.allowed_origins = frozenset(settings.allowed_origins)
        #: user -> Unix time of their revocation: tokens issued at or before it are
        #: refused. In this process's memory only (docs/auth.md).
        self.revoked: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.verifier is not None

    def check_origin(self, request: web.Request) -> None:
        """Raises Forbidden if an allowlist is set and the request's Origin is not on it.
        A request without Origin is not from a browser page and passes."""
        if not self.allowed_origins or ANY_ORIGIN in self.allowed_origins:
            return
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            raise Forbidden(f"origin {origin!r} is not allowed", code="origin_not_allowed")

    def admit(self, request: web.Request) -> Admission:
        """The principal behind `request`'s token. Raises Unauthorized saying why
        (missing, expired, bad signature, ...) when auth is configured."""
        token, subprotocol = _find_token(request)
        if self.verifier is None:
            return Admission(development_principal(), subprotocol)
        if not token:
            raise Unauthorized("missing token: pass it as ?token=<jwt> or in the "
                               f"{TOKEN_SUBPROTOCOL_PREFIX}<jwt> subprotocol")
        return Admission(self.verify(token), subprotocol)

    def verify(self, token: str) -> Principal:
        """The principal `token` speaks for; raises Unauthorized saying why not.
        Only call when `enabled`."""
        assert self.verifier is not None
        try:
            principal = self.verifier.verify(token)
        except AuthError as exc:
            raise Unauthorized(exc.reason) from None
        revoked_at = self.revoked.get(principal.user)
        if revoked_at is not None and (principal.issued_at is None
                                       or principal.issued_at <= revoked_at):
            raise Unauthorized("token revoked")
        return principal

    def revoke(self, user: str, now: float) -> None:
        """Refuse `user`'s tokens issued at or before `now` (Unix time) from here on."""
        self.revoked[user] = now


def _find_token(request: web.Request) -> tuple[str | None, str | None]:
    """(token, the subprotocol that carried it); the query parameter wins."""
    subprotocol = None
    for offered in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()):
        for value in offered.split(","):
            if value.strip().startswith(TOKEN_SUBPROTOCOL_PREFIX):
                subprotocol = value.strip()
                break
    token = request.query.get(TOKEN_QUERY_PARAMETER)
    if not token and subprotocol is not None:
        token = subprotocol[len(TOKEN_SUBPROTOCOL_PREFIX):]
    return token, subprotocol


def require(principal: Principal, kind: str, name: str, *, write: bool) -> None:
    """Raises Forbidden unless `principal` may read (or write) `name` of `kind`."""
    allowed = principal.can_write(kind, name) if write else principal.can_read(kind, name)
    if not allowed:
        what = {"docs": "document", "rooms": "room", "actors": "actor"}.get(kind, kind)
        verb = "write" if write else "read"
        raise Forbidden(f"user {principal.user!r} may not {verb} {what} {name!r}")
