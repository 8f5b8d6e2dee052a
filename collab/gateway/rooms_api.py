"""HTTP chat-room API: history pages, for clients that are not connected and for servers.

GET /api/rooms/<room>/messages?before=<seq>&limit=<n>   the n newest messages below seq
GET /api/rooms/<room>/messages?after=<seq>&limit=<n>    the n oldest above seq (catch-up)

Answers {"room", "messages": [...], "has_more"} from the room actor, so a page
holds only committed messages, in seq order.
"""

from __future__ import annotations

from aiohttp import web

from collab.actors.room import Room
from collab.errors import BadRequest
from collab.gateway.app_keys import SYSTEM
from collab.gateway.names import parse_key
from collab.runtime.refs import ActorRef


def _seq(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer", code="invalid_query")
    return int(raw)


async def get_messages(request: web.Request) -> web.Response:
    room = parse_key(request.match_info["room"], what="room name")
    unknown = set(request.query) - {"before", "after", "limit"}
    if unknown:
        raise BadRequest(f"unknown query parameters {sorted(unknown)}; use before, after, limit",
                         code="invalid_query")
    kwargs = {name: value for name in ("before", "after", "limit")
              if (value := _seq(request, name)) is not None}
    page = await ActorRef(request.app[SYSTEM], Room, room).call("history", **kwargs)
    return web.json_response({"room": room, **page})
