"""HTTP document API: export a document's state, view it as JSON, apply an update.

GET  /api/docs/<doc>                      full state as a Yjs v1 update
GET  /api/docs/<doc>?format=json&text=a   named shared types as JSON
POST /api/docs/<doc>/update               apply a binary Yjs v1 update; 200 after commit
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from collab.actors.document import ApplyUpdate, Document, Read
from collab.actors.ydoc import SHARED_TYPES, json_view
from collab.errors import BadRequest
from collab.gateway.http_body import read_body
from collab.gateway.keys import SYSTEM
from collab.gateway.names import parse_doc_name


async def _ask(request: web.Request, name: str, message_for) -> object:
    reply: asyncio.Future = asyncio.get_running_loop().create_future()
    request.app[SYSTEM].post(Document, name, message_for(reply))
    return await reply


async def get_doc(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    fmt = request.query.get("format", "yjs")
    if fmt == "yjs":
        state = await _ask(request, name, lambda reply: Read(lambda doc: doc.get_update(), reply))
        return web.Response(body=state, content_type="application/octet-stream")
    if fmt != "json":
        raise BadRequest("format must be 'yjs' or 'json'", code="invalid_format")
    unknown = set(request.query) - {"format", *SHARED_TYPES}
    if unknown:
        raise BadRequest(f"unknown query parameters {sorted(unknown)}; use "
                         f"{sorted(SHARED_TYPES)} to name shared types", code="invalid_query")
    wanted = {kind: request.query.getall(kind) for kind in SHARED_TYPES if kind in request.query}
    if not wanted:
        roots = await _ask(request, name, lambda reply: Read(lambda doc: sorted(doc.keys()), reply))
        return web.json_response({"doc": name, "roots": roots})
    view = await _ask(request, name, lambda reply: Read(lambda doc: json_view(doc, wanted), reply))
    return web.json_response({"doc": name, **view})


async def post_update(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    body = await read_body(request)
    if not body:
        raise BadRequest("empty body; send a binary Yjs v1 update", code="invalid_update")
    seq = await _ask(request, name, lambda reply: ApplyUpdate(body, reply))
    return web.json_response({"doc": name, "committed": True, "seq": seq})
