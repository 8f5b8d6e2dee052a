"""The admin API: cut a user off, or lower what they may do, at once and everywhere.

- `POST /api/admin/revoke {"user": "<id>"}`: their tokens issued up to now are
  refused and their live WebSockets close with 4403; a token issued after the
  answer works (the answer waits for the next whole second, as `iat` has whole
  seconds: user_rules.revocation_cutoff).
- `POST /api/admin/permissions {"user": "<id>", "docs": {pattern: level}, ...}`
  with levels "none", "r", "rw": a ceiling over whatever their tokens grant (an
  empty body lifts it). Their live sockets that may no longer read what they
  hold close with 4403; the others go on with the lower permissions.
- `GET /api/admin/permissions/<user>`: the limits in force.

Every change is committed to the store before the answer (so it survives
restarts), then published to the other processes over Redis
(gateway/user_rules.py). The API token check (gateway/http_auth.py) admits only
admin tokens here.
Inspecting actors (`GET /api/admin/actors`) is gateway/admin_actors.py.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from collab.auth import MAX_USER_CHARS, parse_limits, valid_user_id
from collab.errors import BadRequest
from collab.gateway.app_keys import GATEKEEPER
from collab.gateway.http_body import decode_body, read_body


async def _user_body(request: web.Request, shape: str) -> tuple[str, dict[str, Any]]:
    """The user a change is about, and the whole body; raises BadRequest (400)."""
    body = decode_body(await read_body(request))
    user = body.get("user") if isinstance(body, dict) else None
    if not valid_user_id(user):
        raise BadRequest(f'"user" must be a string of 1 to {MAX_USER_CHARS} characters '
                         f"(valid Unicode, no NUL): {shape}")
    return user, body


async def revoke(request: web.Request) -> web.Response:
    user, _ = await _user_body(request, '{"user": "<id>"}')
    applied = await request.app[GATEKEEPER].rules.revoke(user, time.time())
    return web.json_response({"user": user, "closed": applied.closed})


async def set_permissions(request: web.Request) -> web.Response:
    user, body = await _user_body(
        request, '{"user": "<id>", "docs": {"<pattern>": "none" | "r" | "rw"}, ...}')
    try:
        limits = parse_limits(body)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    applied = await request.app[GATEKEEPER].rules.limit(user, limits, time.time())
    return web.json_response({"user": user, "limits": limits, "closed": applied.closed,
                              "downgraded": applied.downgraded})


async def get_permissions(request: web.Request) -> web.Response:
    user = request.match_info["user"]
    return web.json_response({"user": user,
                              "limits": request.app[GATEKEEPER].rules.limits_of(user)})
