"""An application authentication hook for the tests (COLLAB_AUTH_HOOK): a session
cookie looked up in the application's own table, or an API key passed as the token."""

from __future__ import annotations

from collab.auth import Credentials, Principal
from collab.errors import Forbidden

#: The application's sessions: cookie value -> user.
SESSIONS = {"s-ann": "ann"}
#: Keys the application hands out instead of JWTs: token -> user (read-only).
API_KEYS = {"key-bob": "bob"}


#: Client addresses the application blocks (as its proxy reports them).
BLOCKED = {"203.0.113.9"}


async def authenticate(credentials: Credentials) -> Principal | None:
    if credentials.token == "key-banned":
        raise Forbidden("this key is banned")
    if credentials.remote in BLOCKED:
        raise Forbidden(f"{credentials.remote} is blocked")
    user = SESSIONS.get(credentials.cookies.get("session", ""))
    if user is not None:
        return Principal(user, {"docs": {"*": "rw"}, "rooms": {"*": "rw"}})
    user = API_KEYS.get(credentials.token or "")
    if user is not None:
        return Principal(user, {"docs": {"*": "r"}, "rooms": {"*": "r"}})
    return None  # fall back to signed tokens (COLLAB_SECRET), if configured
