"""Who a client is and what it may touch: signed-token verification and permission checks.

Pure code over strings: no sockets, no aiohttp. The gateway finds the token in a
request and asks a `Verifier` for the `Principal`; the principal answers
`can_read` / `can_write` for a document, a room or an application actor.

PyJWT and cryptography are imported where tokens are first read or made: together
they are 10 MiB of a process's memory, which a server without tokens never needs.
"""

from __future__ import annotations

import importlib
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from collab.protocol.text import is_text

#: Characters of a user id. User ids are stored (revocations, limits, chat messages);
#: 256 is above any id scheme in use (UUIDs, ULIDs, e-mail addresses up to 254).
MAX_USER_CHARS = 256
#: Permission kinds a token may carry, each a map of name pattern -> "r" or "rw".
#: `actors` names are `<kind>/<key>` (e.g. `counter/c-1`).
KINDS = ("docs", "rooms", "actors")
READ = "r"
READ_WRITE = "rw"
ACCESS_LEVELS = (READ, READ_WRITE)
#: An administrator's limit (never a grant): no access at all.
NO_ACCESS = "none"
LIMIT_LEVELS = (NO_ACCESS, READ, READ_WRITE)
#: Seconds of clock difference between the token issuer and this server that `exp`
#: and `iat` tolerate; small, so an expired token stops working almost at once.
CLOCK_LEEWAY = 5.0
#: Algorithms per key type. Fixed by configuration, never read from the token, so
#: `alg: none` and "verify an RS256 public key as an HS256 secret" cannot happen.
HMAC_ALGORITHM = "HS256"
RSA_ALGORITHM = "RS256"
EC_ALGORITHM = "ES256"
PEM_PREFIX = "-----BEGIN"
_TTL = re.compile(r"^(\d+)([smhd])$")
_TTL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class AuthError(Exception):
    """A token we do not accept; `reason` is one short phrase for the 401 message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Principal:
    """The user a verified token speaks for, with its permissions.

    `permissions` maps a kind (`docs`, `rooms`, `actors`) to {name pattern: "r"|"rw"};
    `expires_at` is a Unix time, or None in development mode (no auth configured)."""

    user: str
    permissions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    expires_at: float | None = None
    issued_at: float | None = None
    admin: bool = False
    #: Development mode: no auth configured, everyone may do everything.
    unrestricted: bool = False
    #: An administrator's ceiling over `permissions` (POST /api/admin/permissions):
    #: {kind: {pattern: "none" | "r" | "rw"}}; names no pattern matches are not limited.
    limits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def access(self, kind: str, name: str) -> str | None:
        """The access level ("r", "rw") for `name` of `kind`, or None for no access.
        The longest matching pattern wins (the most specific grant), then the
        longest matching limit may lower it."""
        level = READ_WRITE if self.unrestricted else _longest_match(
            self.permissions.get(kind, {}), name)
        if level is None or not self.limits:
            return level
        ceiling = _longest_match(self.limits.get(kind, {}), name)
        if ceiling == NO_ACCESS:
            return None
        return READ if ceiling == READ else level

    def can_read(self, kind: str, name: str) -> bool:
        return self.access(kind, name) is not None

    def can_write(self, kind: str, name: str) -> bool:
        return self.access(kind, name) == READ_WRITE


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented, for an application's authentication hook: the token
    it passed (query parameter, subprotocol, Bearer header or `/ws` auth message;
    None if none), and the upgrade or API request's headers, cookies and address."""

    token: str | None
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    remote: str | None


#: An application's authentication hook (COLLAB_AUTH_HOOK): the Principal for these
#: credentials, or None to fall back to token verification (401 without a key).
#: It may raise collab.errors.Unauthorized / Forbidden to refuse with its own reason.
AuthHook = Callable[[Credentials], Awaitable["Principal | None"]]


def load_hook(spec: str) -> AuthHook:
    """Import `module:function`, an async function taking Credentials.
    Raises ValueError with a readable reason."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"COLLAB_AUTH_HOOK must look like 'package.module:function', "
                         f"got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"COLLAB_AUTH_HOOK {spec}: cannot import {module_name!r}: "
                         f"{exc}") from exc
    hook = getattr(module, attribute, None)
    if not inspect.iscoroutinefunction(hook):
        raise ValueError(f"COLLAB_AUTH_HOOK {spec}: {attribute!r} is not an async function")
    return hook


def _longest_match(patterns: Mapping[str, str], name: str) -> str | None:
    """The value of the longest pattern matching `name`, or None."""
    best: tuple[int, str] | None = None
    for pattern, value in patterns.items():
        if fnmatchcase(name, pattern) and (best is None or len(pattern) > best[0]):
            best = (len(pattern), value)
    return best[1] if best is not None else None


def parse_limits(body: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """An administrator's limits from `body` ({kind: {pattern: level}} for the kinds
    present). Raises ValueError saying what is wrong."""
    limits: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        patterns = body.get(kind, {})
        if not isinstance(patterns, dict) or not all(
                isinstance(p, str) and p and level in LIMIT_LEVELS
                for p, level in patterns.items()):
            raise ValueError(f'"{kind}" must map name patterns to "none", "r" or "rw"')
        if patterns:
            limits[kind] = dict(patterns)
    return limits


#: A connection not yet authenticated: may read and write nothing.
NOBODY = Principal(user="")


def development_principal(user: str = "") -> Principal:
    """The principal of every client when no auth is configured: may do everything."""
    return Principal(user=user, unrestricted=True)


class Verifier:
    """Checks tokens against the configured key(s): HS256 with a shared secret,
    and/or RS256 or ES256 with a public key. Which algorithm goes with which key is
    fixed here; a token naming any other algorithm is refused."""

    def __init__(self, secret: str | None = None, public_key: str | None = None) -> None:
        """`public_key` is a PEM string or a path to a PEM file.
        Raises ValueError if neither is given or the key cannot be read."""
        self._keys: dict[str, Any] = {}
        if secret:
            self._keys[HMAC_ALGORITHM] = secret
        if public_key:
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = load_public_key(public_key)
            algorithm = RSA_ALGORITHM if isinstance(key, rsa.RSAPublicKey) else EC_ALGORITHM
            self._keys[algorithm] = key
        if not self._keys:
            raise ValueError("a Verifier needs a secret or a public key")

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def verify(self, token: str, now: float | None = None) -> Principal:
        """The principal `token` speaks for. Raises AuthError naming why it is refused
        (malformed, algorithm not accepted, bad signature, expired, missing claim)."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        algorithm = header.get("alg")
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None:
            raise AuthError(f"token algorithm {algorithm!r} is not accepted "
                            f"(accepted: {', '.join(self._keys)})")
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], leeway=CLOCK_LEEWAY,
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        return principal_from_claims(claims)


def valid_user_id(user: Any) -> bool:
    """True for a string a store can keep as a user id (collab.protocol.text)."""
    return isinstance(user, str) and 0 < len(user) <= MAX_USER_CHARS and "\x00" not in user \
        and is_text(user)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """A Principal from verified claims. Raises AuthError if a claim has the wrong shape."""
    user = claims.get("sub")
    if not isinstance(user, str) or not user:
        raise AuthError("'sub' must be a non-empty string")
    if not valid_user_id(user):
        raise AuthError(f"'sub' must be 1 to {MAX_USER_CHARS} characters of valid Unicode "
                        "text without NUL")
    permissions: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        grants = claims.get(kind, {})
        if not isinstance(grants, dict) or not all(
                isinstance(p, str) and level in ACCESS_LEVELS for p, level in grants.items()):
            raise AuthError(f"'{kind}' must map name patterns to \"r\" or \"rw\"")
        permissions[kind] = dict(grants)
    issued_at = claims.get("iat")
    return Principal(user=user, permissions=permissions, expires_at=float(claims["exp"]),
                     issued_at=float(issued_at) if isinstance(issued_at, int | float) else None,
                     admin=claims.get("admin") is True)


def load_public_key(value: str) -> Any:
    """A public key from PEM text or from the path of a PEM file; RSA or EC only.
    Raises ValueError saying what is wrong."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = value
    if not value.lstrip().startswith(PEM_PREFIX):
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read the public key file {value!r}: {exc}") from None
    try:
        key = load_pem_public_key(text.encode())
    except ValueError as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("the public key must be RSA (RS256) or EC (ES256)")
    return key


def issue_token(secret: str, user: str, *, docs: Iterable[str] = (), rooms: Iterable[str] = (),
                read_only: bool = False, ttl: float = 3600.0, admin: bool = False,
                now: float | None = None) -> str:
    """An HS256 token for `user` granting `docs` and `rooms` name patterns (read-only
    if asked), expiring `ttl` seconds from `now`."""
    now = time.time() if now is None else now
    level = READ if read_only else READ_WRITE
    claims: dict[str, Any] = {"sub": user, "iat": int(now), "exp": int(now + ttl),
                              "docs": {pattern: level for pattern in docs},
                              "rooms": {pattern: level for pattern in rooms}}
    if admin:
        claims["admin"] = True
    import jwt

    return jwt.encode(claims, secret, algorithm=HMAC_ALGORITHM)


def parse_ttl(text: str) -> float:
    """Seconds in `30s`, `30m`, `1h`, `2d`. Raises ValueError for anything else."""
    match = _TTL.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"a TTL is a positive number and a unit (s, m, h, d), got {text!r}")
    return float(int(match.group(1)) * _TTL_SECONDS[match.group(2)])
