"""HTTP actor API.

POST /api/actors/<kind>/<key>/actions/<name>   {"args": [...], "kwargs": {...}} -> {"result"}
POST /api/actors/<kind>/<key>/queues/<name>    the message itself -> {"queued": true, "seq"}
GET  /api/actors/<kind>/<key>/queues/<name>    {"pending": n, "dead": [...]}
POST /api/actors/<kind>/<key>/queues/<name>/redrive                 -> {"redriven": n}
POST /api/actors/<kind>/<key>/workflows/<name> {"args": [...]}     -> {"id": run id}
GET  /api/actors/<kind>/<key>/workflows/<id>   {"id", "name", "status", "steps", "result", "error"}

Bodies are JSON, or msgpack with `Content-Type: application/msgpack` (answered
in msgpack). Answers come once what they report is committed.
"""

from __future__ import annotations

from aiohttp import web

from collab.errors import BadRequest
from collab.gateway.addresses import client_address
from collab.gateway.app_keys import SETTINGS, SYSTEM
from collab.gateway.http_auth import PRINCIPAL
from collab.gateway.http_body import decode_body, read_body
from collab.gateway.names import parse_key
from collab.protocol.codec import pack
from collab.runtime.actions import (
    CallAction,
    InvalidArguments,
    check_depth,
)
from collab.runtime.refs import ActorRef
from collab.runtime.registry import UnknownActorType

MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")

def _target(request: web.Request) -> ActorRef:
    try:
        cls = request.app[SYSTEM].registry.resolve(request.match_info["kind"])
    except UnknownActorType as exc:
        raise BadRequest(exc.message, code=exc.code, status=404) from None
    key = parse_key(request.match_info["key"], what="actor key")
    return ActorRef(request.app[SYSTEM], cls, key)


async def call_action(request: web.Request) -> web.Response:
    ref = _target(request)
    binary = request.content_type in MSGPACK_TYPES
    args, kwargs = _decode_call(await read_body(request), binary)
    action, caller = request.match_info["action"], http_caller(request)
    result = await ref.ask(
        lambda reply: CallAction(action, tuple(args), kwargs, reply, caller=caller),
        repr(action))
    return _encode({"result": result}, binary)


def http_caller(request: web.Request) -> str:
    """What actors meter an HTTP call against (a room's write rate): the token's user,
    or without one (development mode) the client's address."""
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.user:
        return f"user:{principal.user}"
    return f"addr:{client_address(request, request.app[SETTINGS].forwarded_hops)}"


async def send_to_queue(request: web.Request) -> web.Response:
    queue = _target(request).queue(request.match_info["queue"])
    binary = request.content_type in MSGPACK_TYPES
    body = await read_body(request)
    if not body:
        raise BadRequest("empty body; send the message as JSON or msgpack",
                         code="invalid_body")
    message = decode_body(body, binary)
    _check_depth((message,), "the message")
    seq = await queue.send(message)
    return _encode({"queued": True, "seq": seq}, binary)


async def start_workflow(request: web.Request) -> web.Response:
    ref = _target(request)
    binary = request.content_type in MSGPACK_TYPES
    args, kwargs = _decode_call(await read_body(request), binary)
    if kwargs:
        raise BadRequest("workflows take positional arguments only", code="invalid_body")
    _check_depth(args, f"{request.match_info['name']}: arguments")
    run_id = await ref.start_workflow(request.match_info["name"], *args)
    return _encode({"id": run_id}, binary)


async def workflow_status(request: web.Request) -> web.Response:
    ref = _target(request)
    return _encode(await ref.workflow_status(request.match_info["run"]), False)


async def inspect_queue(request: web.Request) -> web.Response:
    queue = _target(request).queue(request.match_info["queue"])
    return _encode(await queue.inspect(), False)


async def redrive_queue(request: web.Request) -> web.Response:
    queue = _target(request).queue(request.match_info["queue"])
    return _encode({"redriven": await queue.redrive()}, False)


def _check_depth(values: list | tuple, what: str) -> None:
    """400 invalid_arguments if `values` nest deeper than an action's arguments may
    (calls themselves are checked when they are made: CallAction)."""
    try:
        check_depth(values, what)
    except InvalidArguments as exc:
        raise BadRequest(exc.message, code=exc.code) from None


def _decode_call(body: bytes, binary: bool) -> tuple[list, dict]:
    if not body:
        return [], {}
    call = decode_body(body, binary)
    if not isinstance(call, dict) or set(call) - {"args", "kwargs"}:
        raise BadRequest('body must be an object {"args": [...], "kwargs": {...}}',
                         code="invalid_body")
    args, kwargs = call.get("args", []), call.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict) \
            or not all(isinstance(name, str) for name in kwargs):
        raise BadRequest('"args" must be a list and "kwargs" an object', code="invalid_body")
    return args, kwargs


def _encode(answer: object, binary: bool) -> web.Response:
    try:
        if binary:
            return web.Response(body=pack(answer),
                                content_type="application/msgpack")
        return web.json_response(answer)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the action's result cannot be encoded: {exc}",
                         code="result_not_serializable", status=500) from None
