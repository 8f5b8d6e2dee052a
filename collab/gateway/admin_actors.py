"""The admin API's view of application actors, read from the store (runtime/inspection.py):

- `GET /api/admin/actors?kind=<kind>&limit=<n>&cursor=<next>`: a page of the
  actors with anything stored, `{"actors": [...], "next": cursor or null}`;
- `GET /api/admin/actors/<kind>/<key>`: everything stored for one actor (the
  same JSON as `collab actors show`), 404 `actor_not_found` if nothing is.

It reads the store, not the actors: nothing is loaded or woken, and a loaded
actor shows its last committed state. The API token check (gateway/http_auth.py)
admits only admin tokens here.
"""

from __future__ import annotations

from aiohttp import web

from collab.errors import BadRequest
from collab.gateway.app_keys import SYSTEM
from collab.gateway.paging import parse_limit
from collab.runtime.inspection import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_kind,
    list_page,
    parse_cursor,
    show,
)

#: The query parameters of the listing.
LIST_PARAMETERS = ("kind", "limit", "cursor")


async def list_actors(request: web.Request) -> web.Response:
    query = request.query
    unknown = set(query) - set(LIST_PARAMETERS)
    if unknown:
        raise BadRequest(f"unknown query parameters {sorted(unknown)}; use "
                         f"{', '.join(LIST_PARAMETERS)}", code="invalid_query")
    kind = check_kind(query["kind"]) if "kind" in query else None
    after = parse_cursor(query["cursor"]) if "cursor" in query else None
    limit = parse_limit(query.get("limit"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    page = await list_page(request.app[SYSTEM].store, kind, after, limit)
    return web.json_response(page)


async def show_actor(request: web.Request) -> web.Response:
    kind = check_kind(request.match_info["kind"])
    return web.json_response(await show(request.app[SYSTEM].store, kind,
                                        request.match_info["key"]))
