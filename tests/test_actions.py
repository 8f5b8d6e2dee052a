"""Action calls (runtime/actions.py): arguments of the wrong type for an action's
simple annotations, or nested deeper than MAX_ARGUMENT_DEPTH, are the caller's
error, `invalid_arguments` (400), never `internal`, on every path (HTTP, /ws in
JSON and msgpack, actor to actor); a TypeError inside the action's own code is
still `internal`. Every action of the built-in Room is checked with wrong types."""

from __future__ import annotations

from typing import Any, Optional

import msgpack
import pytest

from collab.runtime.actions import (
    MAX_ARGUMENT_DEPTH,
    CallAction,
    InvalidArguments,
    bind,
    check_depth,
)
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess

APP = ("--app", "tests.apps.counter:registry")


def nested(depth: int) -> Any:
    """A list in a list ... `depth` levels around one number."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


class Typed:
    def simple(self, n: int, x: float, s: str, flag: bool, items: list[str],
               table: dict[str, int], raw: bytes) -> None: ...

    def optional(self, a: int | None, b: Optional[str] = "b", c: int = None) -> None: ...  # noqa: RUF013, UP045

    def unchecked(self, a: Any, b: Typed, c: tuple[int, int], d: NotAType, e) -> None: ...  # noqa: F821

    def variadic(self, *ns: int, **named: str) -> None: ...


def call(method, *args, **kwargs) -> None:
    bind(method, Typed(), method.__name__, args, kwargs)


GOOD = (1, 1.5, "s", True, ["a"], {"k": 1}, b"r")


def test_simple_annotations_are_checked():
    call(Typed.simple, *GOOD)
    call(Typed.simple, 1, 2, "s", False, ("a",), {}, b"")  # an int is a float; a tuple a list
    for index, bad in [(0, "1"), (0, True), (0, 1.0), (1, "1.5"), (1, False), (2, 3),
                       (3, 1), (3, "true"), (4, "abc"), (4, {"a": 1}), (5, [1]),
                       (6, "r"), (0, None)]:
        args = list(GOOD)
        args[index] = bad
        with pytest.raises(InvalidArguments, match=r"simple: .* must be"):
            call(Typed.simple, *args)


def test_none_where_the_annotation_or_the_default_allows_it():
    call(Typed.optional, None, None, None)
    call(Typed.optional, 1, "b", 2)
    for args in [("1",), (1, 2), (1, "b", "c")]:
        with pytest.raises(InvalidArguments):
            call(Typed.optional, *args)


def test_other_annotations_are_left_to_the_action():
    call(Typed.unchecked, object(), "not a Typed", "not a tuple", 1, 2)


def test_variadic_arguments_are_checked_one_by_one():
    call(Typed.variadic, 1, 2, a="x")
    with pytest.raises(InvalidArguments, match="ns must be int"):
        call(Typed.variadic, 1, "2")
    with pytest.raises(InvalidArguments, match="named must be str"):
        call(Typed.variadic, 1, a=1)


def test_the_signature_itself_still_decides_first():
    with pytest.raises(InvalidArguments, match="missing"):
        call(Typed.simple, 1)


def test_arguments_nest_at_most_max_argument_depth():
    check_depth((nested(MAX_ARGUMENT_DEPTH),), "x")
    check_depth({"meta": {"k": nested(MAX_ARGUMENT_DEPTH - 1)}}, "x")
    for values in [(nested(MAX_ARGUMENT_DEPTH + 1),), {"k": nested(100_000)}]:
        with pytest.raises(InvalidArguments, match=f"deeper than {MAX_ARGUMENT_DEPTH}"):
            check_depth(values, "x")
    with pytest.raises(InvalidArguments):  # a call that deep cannot even be made
        CallAction("send", (nested(MAX_ARGUMENT_DEPTH + 1),), {}, None)


# -- against a real server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("actions") / "collab.db", args=APP).start()
    yield proc
    proc.stop()


async def http_error(session, srv: ServerProcess, kind: str, key: str, action: str,
                     args: list, kwargs: dict, binary: bool = False) -> tuple[int, str]:
    url = f"{srv.http_url}/api/actors/{kind}/{key}/actions/{action}"
    body = {"args": args, "kwargs": kwargs}
    if binary:
        resp = await session.post(url, data=msgpack.packb(body),
                                  headers={"Content-Type": "application/msgpack"})
    else:
        resp = await session.post(url, json=body)
    if resp.content_type == "application/msgpack":
        answer = msgpack.unpackb(await resp.read())
    else:  # errors are JSON, whatever the request's encoding
        answer = await resp.json()
    return resp.status, answer.get("error", {}).get("code", "ok")


async def ws_error(client: NClient, kind: str, key: str, action: str, args: list,
                   kwargs: dict) -> str:
    try:
        await client.request("actor.call", actor=kind, key=key, action=action, args=args,
                             kwargs=kwargs)
    except NativeError as exc:
        return exc.code
    return "ok"


async def test_wrong_types_for_an_application_actor(srv, session):
    assert await http_error(session, srv, "counter", "t", "increment", ["2"], {}) == \
        (400, "invalid_arguments")  # was a TypeError in `count += "2"`: 500 internal
    assert await http_error(session, srv, "counter", "t", "increment", [], {"by": [1]},
                            binary=True) == (400, "invalid_arguments")
    for json_mode in (False, True):
        client = await NClient.connect(session, srv.http_url, json=json_mode)
        assert await ws_error(client, "counter", "t", "increment", [None], {}) == \
            "invalid_arguments"
        assert await ws_error(client, "counter", "t", "increment", [1], {}) == "ok"
        await client.close()
    # Good arguments, and the action's own code fails: that is the actor's bug.
    assert await http_error(session, srv, "counter", "t", "type_bug", [1], {}) == \
        (500, "internal")


#: Every action of the room, each argument given a value of the wrong type. The
#: connected /ws caller names no `user` (it is the connection's); HTTP calls do.
ROOM_CALLS: list[tuple[str, list, dict]] = [
    ("send", [7, "body"], {}), ("send", [None, "body"], {}), ("send", ["c", 7], {}),
    ("send", ["c", b"bytes"], {}), ("send", ["c", "body", "meta"], {}),
    ("send", ["c", "body", [1]], {}), ("send", ["c", "body"], {"user": 7}),
    ("edit", ["1", "body"], {}), ("edit", [True, "body"], {}), ("edit", [1.0, "body"], {}),
    ("edit", [1, None], {}), ("edit", [1, "body"], {"user": ["u"]}),
    ("delete", ["1"], {}), ("delete", [[1]], {}), ("delete", [1], {"user": {}}),
    ("react", ["1", "+1"], {}), ("react", [1, 7], {}), ("react", [1, "+1", "yes"], {}),
    ("react", [1, "+1", 1], {}), ("react", [1, "+1"], {"user": 1.5}),
    ("history", ["1"], {}), ("history", [None, True], {}), ("history", [None, None, "5"], {}),
    ("history", [None, None, 2.0], {}),
    ("typing", ["yes"], {}), ("typing", [1], {}), ("typing", [True], {"user": False}),
    ("read", ["1"], {}), ("read", [None], {}), ("read", [1], {"user": 1}),
    ("unread", [], {"user": 1}),
    ("receipts", [1], {}), ("presence", [], {"user": "u"}),
]


def has_bytes(args: list) -> bool:
    return any(isinstance(arg, bytes) for arg in args)


async def test_every_room_action_refuses_wrong_types_over_http(srv, session):
    room = "typed-http"
    await session.post(f"{srv.http_url}/api/actors/room/{room}/actions/send",
                       json={"args": ["c0", "first"], "kwargs": {"user": "ann"}})
    for action, args, kwargs in ROOM_CALLS:
        with_user = kwargs if "user" in kwargs or action in ("history", "receipts",
                                                              "presence") \
            else {**kwargs, "user": "ann"}
        for binary in (False, True) if not has_bytes(args) else (True,):
            assert await http_error(session, srv, "room", room, action, args, with_user,
                                    binary) == (400, "invalid_arguments"), (action, args, kwargs)


async def test_every_room_action_refuses_wrong_types_over_ws(srv, session):
    room = "typed-ws"
    for json_mode in (False, True):
        client = await NClient.connect(session, srv.http_url, json=json_mode)
        await client.request("actor.connect", actor="room", key=room, params={"user": "ann"})
        await client.request("actor.call", actor="room", key=room, action="send",
                             args=[f"c-{json_mode}", "first"])
        for action, args, kwargs in ROOM_CALLS:
            if "user" in kwargs and action not in ("receipts", "presence"):
                continue  # a connected caller may not name a user at all (forbidden)
            if json_mode and has_bytes(args):
                continue  # JSON has no bytes
            assert await ws_error(client, "room", room, action, args, kwargs) == \
                "invalid_arguments", (action, args, kwargs, json_mode)
        await client.close()


# -- nesting ------------------------------------------------------------------------------------


def deep_meta(depth: int) -> dict:
    """Room meta a list nests `depth` levels deep in: small (2 bytes a level as JSON,
    1 in msgpack) and under the room's 4 KiB, so only its depth is wrong."""
    return {"k": nested(depth - 1)}


async def test_deeply_nested_room_meta_is_invalid_arguments_on_every_path(srv, session):
    meta = deep_meta(1000)
    status, code = await http_error(session, srv, "room", "deep", "send", ["c1", "x", meta],
                                    {"user": "ann"}, binary=True)
    assert (status, code) == (400, "invalid_arguments")
    for json_mode in (False, True):
        client = await NClient.connect(session, srv.http_url, json=json_mode)
        await client.request("actor.connect", actor="room", key="deep", params={"user": "ann"})
        for depth in (150, 900):
            assert await ws_error(client, "room", "deep", "send",
                                  [f"c-{json_mode}-{depth}", "x", deep_meta(depth)], {}) == \
                "invalid_arguments", (json_mode, depth)
        sent = await client.request("actor.call", actor="room", key="deep", action="send",
                                    args=[f"ok-{json_mode}", "x", deep_meta(MAX_ARGUMENT_DEPTH)])
        assert sent["message"]["meta"] == deep_meta(MAX_ARGUMENT_DEPTH)
        await client.close()


async def test_deeply_nested_params_and_queue_messages_are_invalid_arguments(srv, session):
    client = await NClient.connect(session, srv.http_url)
    with pytest.raises(NativeError) as refused:
        await client.request("actor.connect", actor="lobby", key="deep",
                             params={"name": "x", "more": nested(500)})
    assert refused.value.code == "invalid_arguments"
    with pytest.raises(NativeError) as refused:
        await client.request("actor.queue", actor="worker", key="deep", queue="jobs",
                             message={"n": nested(500)})
    assert refused.value.code == "invalid_arguments"
    await client.close()
    resp = await session.post(f"{srv.http_url}/api/actors/worker/deep/queues/jobs",
                              json={"n": nested(500)})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_arguments"
    resp = await session.post(f"{srv.http_url}/api/actors/agent/deep/workflows/doomed",
                              json={"args": [nested(500)]})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_arguments"
