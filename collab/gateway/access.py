"""Who is knocking: the Origin allowlist, the application's hook and the client's token.

Finds the token in the `token` query parameter (what y-websocket's `params`
sends) or in a `collab-token.<jwt>` subprotocol; asks the application's hook
(COLLAB_AUTH_HOOK) first, if there is one, then verifies the token
(collab/auth.py); answers with the Principal, or raises Unauthorized (401) /
Forbidden (403). With neither a key nor a hook (development mode) everyone gets
an unrestricted principal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiohttp import hdrs, web

from collab.auth import (
    MAX_USER_CHARS,
    AuthError,
    AuthHook,
    Credentials,
    Principal,
    Verifier,
    development_principal,
    load_hook,
    valid_user_id,
)
from collab.config import ConfigError, Settings
from collab.errors import Forbidden, Unauthorized
from collab.gateway.addresses import client_address
from collab.gateway.user_rules import UserRules, refused

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


class MissingCredentials(Unauthorized):
    """Nothing to authenticate with: no token, and no hook accepted the request.
    `/ws` may still authenticate in-band with its `auth` message."""


class Gatekeeper:
    """The access policy of one server, built once from its settings."""

    def __init__(self, settings: Settings, hook: AuthHook | None = None) -> None:
        """`hook` overrides the one COLLAB_AUTH_HOOK names (for applications that build
        the server in code). Raises ConfigError if that hook cannot be loaded."""
        self.verifier = (Verifier(settings.secret, settings.jwt_public_key)
                         if settings.secret or settings.jwt_public_key else None)
        if hook is None and settings.auth_hook:
            try:
                hook = load_hook(settings.auth_hook)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.hook = hook
        self.allowed_origins = frozenset(settings.allowed_origins)
        self.forwarded_hops = settings.forwarded_hops
        #: Administrators' revocations and limits, stored and shared by every process
        #: (gateway/user_rules.py); the app's startup loads them.
        self.rules = UserRules()

    @property
    def enabled(self) -> bool:
        return self.verifier is not None or self.hook is not None

    def check_origin(self, request: web.Request) -> None:
        """Raises Forbidden if an allowlist is set and the request's Origin is not on it.
        A request without Origin is not from a browser page and passes."""
        if not self.allowed_origins or ANY_ORIGIN in self.allowed_origins:
            return
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            raise Forbidden(f"origin {origin!r} is not allowed", code="origin_not_allowed")

    async def admit(self, request: web.Request) -> Admission:
        """The principal behind a WebSocket upgrade. Raises Unauthorized saying why
        (MissingCredentials, expired, bad signature, ...) when auth is configured."""
        token, subprotocol = _find_token(request)
        if not self.enabled:
            return Admission(development_principal(), subprotocol)
        return Admission(await self.authenticate(token, request), subprotocol)

    async def authenticate(self, token: str | None, request: web.Request | None) -> Principal:
        """Who `token` (None: none presented) and `request` speak for: the hook's
        answer if it gives one, else the verified token, under the limits an
        administrator set for that user. Only call when `enabled`; `request` may be
        None when there is no hook (only the hook reads it)."""
        principal = await self._identify(token, request)
        limits = self.rules.limits_of(principal.user)
        return replace(principal, limits=limits) if limits else principal

    async def _identify(self, token: str | None, request: web.Request | None) -> Principal:
        if self.hook is not None:
            assert request is not None, "an auth hook reads the request"
            credentials = Credentials(token, request.headers, request.cookies,
                                      client_address(request, self.forwarded_hops))
            principal = await self.hook(credentials)
            if principal is not None:
                if not isinstance(principal, Principal):
                    raise TypeError(f"the auth hook returned {type(principal).__name__}, "
                                    "not a collab.auth.Principal or None")
                if not valid_user_id(principal.user):
                    raise TypeError("the auth hook returned a Principal whose user is not "
                                    f"1 to {MAX_USER_CHARS} characters of text without NUL")
                return principal
        if not token:
            raise MissingCredentials(
                "missing token: pass it as ?token=<jwt>, in the "
                f"{TOKEN_SUBPROTOCOL_PREFIX}<jwt> subprotocol or (on /ws) in an auth message")
        if self.verifier is None:  # a hook that returned None, and no key to verify with
            raise Unauthorized("not authenticated")
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """The principal a signed `token` speaks for; raises Unauthorized saying why
        not. Only call with a verifier."""
        assert self.verifier is not None
        try:
            principal = self.verifier.verify(token)
        except AuthError as exc:
            raise Unauthorized(exc.reason) from None
        revoked_at = self.rules.revoked_at(principal.user)
        if revoked_at is not None and refused(principal, revoked_at):
            raise Unauthorized("token revoked")
        return principal


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
