"""`POST /api/admin/revoke {"user": "<id>"}`: cut a user off at once, everywhere.

Their tokens issued up to now are refused and their live WebSockets close with
4403, in every process; a token issued afterwards works. The revocation is
committed to the store before the answer (so it survives restarts), then
published to the other processes over Redis (gateway/revocations.py). The
http_auth middleware admits only admin tokens here.
"""

from __future__ import annotations

import time

from aiohttp import web

from collab.errors import BadRequest
from collab.gateway.keys import GATEKEEPER


async def revoke(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be JSON: {\"user\": \"<id>\"}") from None
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, str) or not user:
        raise BadRequest('"user" must be a non-empty string')
    # Answers once stored and published, with the sockets it closed in this process.
    closed = await request.app[GATEKEEPER].revoke(user, time.time())
    return web.json_response({"user": user, "closed": closed})
