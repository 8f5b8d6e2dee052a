"""HTTP actor API: `POST /api/actors/<kind>/<key>/actions/<name>`.

The body is JSON (or msgpack with `Content-Type: application/msgpack`):
`{"args": [...], "kwargs": {...}}`, both optional. The answer is `{"result": ...}`
in the same encoding, sent once the state the result depends on is committed.
"""

from __future__ import annotations

import json

import msgpack
from aiohttp import web

from collab.errors import BadRequest
from collab.gateway.keys import SETTINGS, SYSTEM
from collab.gateway.names import parse_key
from collab.runtime.actions import ActionError, CallTimeout, InvalidArguments, UnknownAction
from collab.runtime.durable import ActorRef, InternalActionError
from collab.runtime.registry import UnknownActorType

MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")

#: HTTP status for each error an action call can end with.
STATUS = {UnknownActorType: 404, UnknownAction: 404, InvalidArguments: 400, CallTimeout: 504,
          InternalActionError: 500}


async def call_action(request: web.Request) -> web.Response:
    system = request.app[SYSTEM]
    try:
        cls = system.registry.resolve(request.match_info["kind"])
    except UnknownActorType as exc:
        raise BadRequest(exc.message, code=exc.code, status=404) from None
    key = parse_key(request.match_info["key"], what="actor key")
    binary = request.content_type in MSGPACK_TYPES
    args, kwargs = _decode_call(await _read_body(request), binary)
    try:
        result = await ActorRef(system, cls, key).call(request.match_info["action"],
                                                       *args, **kwargs)
    except (ActionError, InternalActionError) as exc:
        # The actor's own ActionErrors carry the code it chose; they are the caller's 400s.
        raise BadRequest(exc.message, code=exc.code,
                         status=STATUS.get(type(exc), 400)) from None
    return _encode_result(result, binary)


async def _read_body(request: web.Request) -> bytes:
    limit = request.app[SETTINGS].max_message_bytes
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(f"body larger than {limit} bytes", code="too_large", status=413)
    return body


def _decode_call(body: bytes, binary: bool) -> tuple[list, dict]:
    if not body:
        return [], {}
    try:
        call = msgpack.unpackb(body, raw=False) if binary else json.loads(body)
    except (ValueError, msgpack.UnpackException) as exc:
        kind = "msgpack" if binary else "JSON"
        raise BadRequest(f"body is not valid {kind}: {exc}", code="invalid_body") from None
    if not isinstance(call, dict) or set(call) - {"args", "kwargs"}:
        raise BadRequest('body must be an object {"args": [...], "kwargs": {...}}',
                         code="invalid_body")
    args, kwargs = call.get("args", []), call.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict) \
            or not all(isinstance(name, str) for name in kwargs):
        raise BadRequest('"args" must be a list and "kwargs" an object', code="invalid_body")
    return args, kwargs


def _encode_result(result: object, binary: bool) -> web.Response:
    try:
        if binary:
            return web.Response(body=msgpack.packb({"result": result}, use_bin_type=True),
                                content_type="application/msgpack")
        return web.json_response({"result": result})
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the action's result cannot be encoded: {exc}",
                         code="result_not_serializable", status=500) from None
