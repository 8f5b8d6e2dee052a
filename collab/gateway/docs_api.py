"""HTTP document API: export a document's state, view it as JSON, apply an update.

GET  /api/docs/<doc>                      full state as a Yjs v1 update
GET  /api/docs/<doc>?format=json&text=a   named shared types as JSON
POST /api/docs/<doc>/update               apply a binary Yjs v1 update; 200 after commit
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from collab.actors.document import ApplyUpdate, Document, Export, Read
from collab.actors.ydoc import SHARED_TYPES, json_view
from collab.errors import BadRequest
from collab.gateway.keys import SETTINGS, SYSTEM
from collab.gateway.names import parse_doc_name


async def _ask(request: web.Request, name: str, message_for) -> object:
    reply: asyncio.Future = asyncio.get_running_loop().create_future()
    request.app[SYSTEM].post(Document, name, message_for(reply))
    return await reply


async def get_doc(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    fmt = request.query.get("format", "yjs")
    if fmt == "yjs":
        state = await _ask(request, name, Export)
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
    limit = request.app[SETTINGS].max_message_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(f"update larger than {limit} bytes", code="too_large", status=413)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(f"update larger than {limit} bytes", code="too_large", status=413)
    if not body:
        raise BadRequest("empty body; send a binary Yjs v1 update", code="invalid_update")
    seq = await _ask(request, name, lambda reply: ApplyUpdate(body, reply))
    return web.json_response({"doc": name, "committed": True, "seq": seq})
