"""Tokens on the HTTP API: with auth configured, every `/api/` request carries
`Authorization: Bearer <jwt>` (or whatever the application's hook accepts, such
as a session cookie) and is checked against the route it reached.

Documents need read (GET) or write (POST …/update, PUT, DELETE), and the list of
documents shows only those the caller may read; room history needs read;
the actor API (actions, queues, workflows) is for trusted back ends and needs an
admin token (`"admin": true`), since its calls name any user they like.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from collab.auth import Principal
from collab.errors import Forbidden, Unauthorized
from collab.gateway.access import MissingCredentials, require
from collab.gateway.app_keys import GATEKEEPER

API_PREFIX = "/api/"
BEARER = "bearer "
#: Who an authenticated API request speaks for (absent in development mode).
PRINCIPAL = web.RequestKey("principal", Principal)


async def authenticate_api(request: web.Request) -> None:
    """Check an `/api/` request's token against the route it reached (with auth on);
    raises Unauthorized or Forbidden. Other paths are the endpoints' to check."""
    gatekeeper = request.app[GATEKEEPER]
    if gatekeeper.enabled and request.path.startswith(API_PREFIX):
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        token = header[len(BEARER):].strip() if header.lower().startswith(BEARER) else None
        try:
            principal = await gatekeeper.authenticate(token, request)
        except MissingCredentials:
            raise Unauthorized("missing token: send Authorization: Bearer <jwt>") from None
        authorize(principal, request)
        request[PRINCIPAL] = principal


def authorize(principal: Principal, request: web.Request) -> None:
    """Raises Forbidden unless `principal` may make this API request."""
    info = request.match_info
    if request.path.startswith("/api/docs/") and "name" in info:
        require(principal, "docs", info["name"], write=request.method != hdrs.METH_GET)
    elif request.path == "/api/docs" and request.method == hdrs.METH_GET:
        pass  # the listing shows only the names the caller may read (docs_api.list_docs)
    elif request.path.startswith("/api/rooms/") and "room" in info:
        require(principal, "rooms", info["room"], write=request.method != hdrs.METH_GET)
    elif not principal.admin:
        raise Forbidden(f"{request.path} needs an admin token")
