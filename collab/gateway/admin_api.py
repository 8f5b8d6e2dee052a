"""`POST /api/admin/revoke {"user": "<id>"}`: cut a user off at once.

Their live WebSockets close with 4403 and their tokens issued up to now are
refused; a token issued afterwards works. The http_auth middleware admits only
admin tokens here. Revocations live in this process's memory (docs/auth.md).
"""

from __future__ import annotations

import time

from aiohttp import web

from collab.errors import BadRequest, CloseCode
from collab.gateway.keys import CONNECTIONS, GATEKEEPER


async def revoke(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be JSON: {\"user\": \"<id>\"}") from None
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, str) or not user:
        raise BadRequest('"user" must be a non-empty string')
    request.app[GATEKEEPER].revoke(user, time.time())
    closed = 0
    for conn in list(request.app[CONNECTIONS]):
        if conn.principal.user == user and not conn.closed:
            conn.close(CloseCode.FORBIDDEN, "revoked")
            closed += 1
    return web.json_response({"user": user, "closed": closed})
