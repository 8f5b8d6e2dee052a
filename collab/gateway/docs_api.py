"""HTTP document API: list documents, export a document's state, view it as JSON,
apply an update, replace or delete it.

GET    /api/docs?prefix=&limit=&cursor=     the documents the caller may read, by name
GET    /api/docs/<doc>                      full state as a Yjs v1 update
GET    /api/docs/<doc>?format=json&text=a   named shared types as JSON
POST   /api/docs/<doc>/update               apply a binary Yjs v1 update; 200 after commit
PUT    /api/docs/<doc>                      replace it with a Yjs v1 update (a new incarnation)
DELETE /api/docs/<doc>                      delete it: 204; its content never comes back
POST   /api/docs/<doc>/versions {"name"}    keep its state now as a named version: 201
GET    /api/docs/<doc>/versions             its versions, newest first
GET    /api/docs/<doc>/versions/<id>        a version's state (binary, or ?format=json as above)
POST   /api/docs/<doc>/versions/<id>/restore  make its content the version's, by an update

Reads never change the document: the JSON view is rendered from a copy of its
state, outside the actor. Every request to a document waits for its actor at most
CALL_TIMEOUT seconds (504 call_timeout), and travels: on a process that does not
own the document it is forwarded to the one that does. The listing reads the
store's catalog (a page of names, sizes and times) and asks the cluster which of
them are loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from collab.actors.document import (
    ApplyUpdate,
    DeleteDoc,
    Document,
    Export,
    MakeVersion,
    ReplaceDoc,
    RestoreVersion,
)
from collab.actors.versions import VersionNotFound, check_name, describe
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
from collab.gateway.http_auth import PRINCIPAL
from collab.gateway.http_body import decode_body, read_body
from collab.gateway.names import parse_doc_name
from collab.gateway.paging import parse_limit
from collab.runtime.actions import DEFAULT_CALL_TIMEOUT
from collab.runtime.inspection import iso_time
from collab.runtime.refs import ActorRef

#: Seconds a request waits for the document's actor to answer, as an actor call does.
CALL_TIMEOUT = DEFAULT_CALL_TIMEOUT
#: Documents per listing page: by default, and at most.
LIST_LIMIT, MAX_LIST_LIMIT = 100, 1000
#: Catalog pages one listing request reads at most while skipping names the caller
#: may not read; past that it answers what it found and a cursor to go on from.
MAX_LIST_SCANS = 10


async def _ask(request: web.Request, name: str, make: Callable[[Any], Any], what: str) -> Any:
    """Post `make(reply)` to document `name`; its answer, or 504 call_timeout."""
    ref = ActorRef(request.app[SYSTEM], Document, name, timeout=CALL_TIMEOUT)
    return await ref.ask(make, what)


async def get_doc(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    return await _state_response(request, name, lambda: _ask(request, name, Export, "a read"))


async def _state_response(request: web.Request, name: str, read: Callable[[], Any]
                          ) -> web.Response:
    """A document's state as the GET endpoints answer it: binary, or the JSON view the
    query asks for (`format=json` and shared types named by kind)."""
    fmt = request.query.get("format", "yjs")
    if fmt == "yjs":
        return web.Response(body=await read(), content_type="application/octet-stream")
    if fmt != "json":
        raise BadRequest("format must be 'yjs' or 'json'", code="invalid_format")
    unknown = set(request.query) - {"format", *SHARED_TYPES}
    if unknown:
        raise BadRequest(f"unknown query parameters {sorted(unknown)}; use "
                         f"{sorted(SHARED_TYPES)} to name shared types", code="invalid_query")
    wanted = {kind: request.query.getall(kind) for kind in SHARED_TYPES if kind in request.query}
    state = await read()
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


async def put_doc(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    body = await read_body(request)
    epoch = await _ask(request, name, lambda reply: ReplaceDoc(body, reply), "a replace")
    return web.json_response({"doc": name, "epoch": epoch})


async def delete_doc(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    await _ask(request, name, DeleteDoc, "a delete")
    return web.Response(status=204)


async def list_docs(request: web.Request) -> web.Response:
    unknown = set(request.query) - {"prefix", "limit", "cursor"}
    if unknown:
        raise BadRequest(f"unknown query parameters {sorted(unknown)}; use prefix, limit, "
                         "cursor", code="invalid_query")
    prefix = request.query.get("prefix", "")
    cursor = request.query.get("cursor") or None
    limit = parse_limit(request.query.get("limit"), LIST_LIMIT, MAX_LIST_LIMIT)
    principal = request.get(PRINCIPAL)

    def readable(doc: str) -> bool:
        return principal is None or principal.admin or principal.can_read("docs", doc)

    system = request.app[SYSTEM]
    found: list[Any] = []
    after, more = cursor, False
    for _ in range(MAX_LIST_SCANS):
        page = await system.store.list_documents(prefix, after, limit + 1 - len(found))
        more = len(page) > limit - len(found)
        for info in page[:limit - len(found)]:
            after = info.name
            if readable(info.name):
                found.append(info)
        if not more or len(found) == limit:
            break
    else:
        more = True  # scanned as far as one request may: go on from `after`
    names = [info.name for info in found]
    elsewhere = await system.ownership.loaded_elsewhere(Document.kind, names)
    docs = [{"name": info.name, "bytes": info.bytes,
             "created_at": iso_time(info.created_at), "updated_at": iso_time(info.updated_at),
             "loaded": system.live(Document, info.name) is not None or info.name in elsewhere}
            for info in found]
    return web.json_response({"docs": docs, "next": after if more else None})


# -- versions ------------------------------------------------------------------------


async def post_version(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    body = decode_body(await read_body(request))
    if not isinstance(body, dict) or set(body) - {"name"}:
        raise BadRequest('send {"name": "..."}', code="invalid_body")
    label = check_name(body.get("name"))
    made = await _ask(request, name, lambda reply: MakeVersion(label, _author(request), reply),
                      "a version")
    return web.json_response(_version_view(made), status=201)


async def list_versions(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    versions = await request.app[SYSTEM].store.list_versions(name)
    return web.json_response({"doc": name, "versions": [
        _version_view(describe(info)) for info in reversed(versions)]})


async def get_version(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    version = _version_id(request)

    async def read() -> bytes:
        data = await request.app[SYSTEM].store.load_version(name, version)
        if data is None:
            raise VersionNotFound(f"document {name!r} has no version {version}")
        return data

    return await _state_response(request, name, read)


async def restore_version(request: web.Request) -> web.Response:
    name = parse_doc_name(request.match_info["name"])
    version = _version_id(request)
    done = await _ask(request, name,
                      lambda reply: RestoreVersion(version, _author(request), reply), "a restore")
    return web.json_response({"doc": name, "restored": version, **done})


def _version_id(request: web.Request) -> int:
    raw = request.match_info["version"]
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("a version id is a positive integer", code="invalid_version")
    return int(raw)


def _author(request: web.Request) -> str | None:
    principal = request.get(PRINCIPAL)
    return principal.user if principal is not None else None


def _version_view(version: dict[str, Any]) -> dict[str, Any]:
    return {**version, "created_at": iso_time(version["created_at"])}
