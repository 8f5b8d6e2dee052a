"""HTTP document API: export a document's state, view it as JSON, apply an update.

GET  /api/docs/<doc>                      full state as a Yjs v1 update
GET  /api/docs/<doc>?format=json&text=a   named shared types as JSON
POST /api/docs/<doc>/update               apply a binary Yjs v1 update; 200 after commit

Reads never change the document: the JSON view is rendered from a copy of its
state, outside the actor. Every request waits for the document's actor at most
CALL_TIMEOUT seconds (504 call_timeout). Both requests travel: on a process that
does not own the document they are forwarded to the one that does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from collab.actors.document import ApplyUpdate, Document, Export
from collab.actors.ydoc import (
    SHARED_TYPES,
    TooDeep,
    UnknownRoot,
    WrongRootType,
    json_view,
    root_names,
)
from collab.errors import BadRequest
from collab.gateway.app_keys import SYSTEM
from collab.gateway.http_body import read_body
from collab.gateway.names import parse_doc_name
from collab.runtime.actions import DEFAULT_CALL_TIMEOUT
from collab.runtime.refs import ActorRef

#: Seconds a request waits for the document's actor to answer, as an actor call does.
CALL_TIMEOUT = DEFAULT_CALL_TIMEOUT


async def _ask(request: web.Request, name: str, make: Callable[[Any], Any], what: str) -> Any:
    """Post `make(reply)` to document `name`; its answer, or 504 call_timeout."""
    ref = ActorRef(request.app[SYSTEM], Document, name, timeout=CALL_TIMEOUT)
    return await ref.ask(make, what)


async def get_doc(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    fmt = request.query.get("format", "yjs")
    if fmt == "yjs":
        state = await _ask(request, name, Export, "a read")
        return web.Response(body=state, content_type="application/octet-stream")
    if fmt != "json":
        raise BadRequest("format must be 'yjs' or 'json'", code="invalid_format")
    unknown = set(request.query) - {"format", *SHARED_TYPES}
    if unknown:
        raise BadRequest(f"unknown query parameters {sorted(unknown)}; use "
                         f"{sorted(SHARED_TYPES)} to name shared types", code="invalid_query")
    wanted = {kind: request.query.getall(kind) for kind in SHARED_TYPES if kind in request.query}
    state = await _ask(request, name, Export, "a read")
    if not wanted:
        return web.json_response({"doc": name, "roots": root_names(state)})
    try:
        view = json_view(state, wanted)
    except UnknownRoot as exc:
        raise BadRequest(f"document {name!r}: {exc}", code="unknown_root", status=404) from None
    except WrongRootType as exc:
        raise BadRequest(f"document {name!r}: {exc}", code="wrong_root_type") from None
    except TooDeep as exc:
        raise BadRequest(f"document {name!r}: {exc}", code="too_deep") from None
    return web.json_response({"doc": name, **view})


async def post_update(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    body = await read_body(request)
    if not body:
        raise BadRequest("empty body; send a binary Yjs v1 update", code="invalid_update")
    seq = await _ask(request, name, lambda reply: ApplyUpdate(body, reply), "an update")
    return web.json_response({"doc": name, "committed": True, "seq": seq})
