"""The native protocol `/ws` against a real server: documents (sync, the saved ack,
awareness), actor connections (params, state, events, refusal), both frame formats,
and a clear error for every kind of bad request, after which everything still works."""

from __future__ import annotations

import asyncio

import aiohttp
import msgpack
import pytest
from pycrdt import Doc, Text

from collab.protocol import ywire
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import Editor, YClient

APP = ("--app", "tests.apps.counter:registry")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("native") / "collab.db", args=APP,
                         env={"COLLAB_IDLE_TIMEOUT": "0.5"}).start()
    yield proc
    proc.stop()


@pytest.fixture(params=["msgpack", "json"])
async def connect(request, srv, session):
    clients: list[NClient] = []

    async def open_client() -> NClient:
        client = await NClient.connect(session, srv.http_url, json=request.param == "json")
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


@pytest.fixture
def name(request):
    """Names unique to this test and its parameters (the server is shared)."""
    return lambda base: f"{base}-{abs(hash(request.node.nodeid)) % 10**8}"


def text_of(doc: Doc) -> str:
    return str(doc.get("body", type=Text))


async def test_two_clients_edit_one_document(connect, name):
    alice, bob = await connect(), await connect()
    first = await alice.request("doc.subscribe", doc=name("native-edit"))
    assert set(first) == {"sv", "update", "awareness"} and first["awareness"] is None
    await bob.request("doc.subscribe", doc=name("native-edit"))
    editor = Editor()
    saved = await alice.request("doc.update", doc=name("native-edit"), update=editor.type("hello"))
    assert saved == {"seq": 1}  # answered once committed: the saved ack
    event = await bob.event("doc.update", doc=name("native-edit"))
    replica = Doc()
    replica.apply_update(bob.binary(event["update"]))
    assert text_of(replica) == "hello"
    # A late subscriber sends its state vector and gets only what it lacks.
    carol = await connect()
    answer = await carol.request("doc.subscribe", doc=name("native-edit"), sv=replica.get_state())
    assert carol.binary(answer["update"]) == b"\x00\x00"  # nothing missing
    assert (await alice.request("doc.update", doc=name("native-edit"),
                                update=editor.type(" world")))["seq"] == 2
    fresh = await connect()
    full = await fresh.request("doc.subscribe", doc=name("native-edit"))
    replica = Doc()
    replica.apply_update(fresh.binary(full["update"]))
    assert text_of(replica) == "hello world"


async def test_events_follow_the_first_frame_format(connect, name):
    client, other = await connect(), await connect()
    await client.request("doc.subscribe", doc=name("native-format"))
    await other.request("doc.subscribe", doc=name("native-format"))
    await other.request("doc.update", doc=name("native-format"), update=Editor().type("x"))
    await client.event("doc.update")
    expected = aiohttp.WSMsgType.TEXT if client.json else aiohttp.WSMsgType.BINARY
    assert set(client.frames) == {expected}


async def test_a_sender_alone_gets_answers_not_echoes(connect, name):
    client = await connect()
    await client.request("doc.subscribe", doc=name("native-echo"))
    for chars in "abc":
        await client.request("doc.update", doc=name("native-echo"), update=Editor().type(chars))
    await client.request("ping")
    assert not client.events


async def test_native_and_yjs_clients_share_a_document(srv, session, connect, name):
    native = await connect()
    await native.request("doc.subscribe", doc=name("mixed"))
    yjs = await YClient.connect(session, srv.http_url.replace("http", "ws"), name("mixed"))
    await yjs.recv_until(lambda m: isinstance(m, ywire.SyncStep1))
    await native.request("doc.update", doc=name("mixed"), update=Editor().type("from native"))
    message = await yjs.recv_until(lambda m: isinstance(m, ywire.SyncUpdate))
    replica = Doc()
    replica.apply_update(message.update)
    assert text_of(replica) == "from native"
    other = Editor()
    other.doc.get("meta", type=Text).insert(0, "from yjs")
    await yjs.send(ywire.SyncUpdate(other.updates[-1]))
    event = await native.event("doc.update", doc=name("mixed"))
    assert event["update"]
    await yjs.ws.close()


async def test_awareness_relayed_and_removed_when_a_socket_closes(connect, name):
    alice, bob = await connect(), await connect()
    await alice.request("doc.subscribe", doc=name("native-aw"))
    await bob.request("doc.subscribe", doc=name("native-aw"))
    state = ywire.encode_awareness([ywire.AwarenessEntry(42, 1, '{"user":"alice"}')])
    assert await alice.request("doc.awareness", doc=name("native-aw"), update=state) is None
    event = await bob.event("doc.awareness", doc=name("native-aw"))
    assert ywire.decode_awareness(bob.binary(event["update"]))[0].client_id == 42
    late = await connect()
    answer = await late.request("doc.subscribe", doc=name("native-aw"))
    assert ywire.decode_awareness(late.binary(answer["awareness"]))[0].state == '{"user":"alice"}'
    await alice.close()

    def removed():
        for ev in bob.events:
            if ev["event"] == "doc.awareness":
                entries = ywire.decode_awareness(bob.binary(ev["update"]))
                if entries[0].removed:
                    return True
        return False
    await bob.wait_for(removed)


async def test_unsubscribe_stops_events(connect, name):
    alice, bob = await connect(), await connect()
    for client in (alice, bob):
        await client.request("doc.subscribe", doc=name("native-unsub"))
    await bob.request("doc.unsubscribe", doc=name("native-unsub"))
    editor = Editor()
    await alice.request("doc.update", doc=name("native-unsub"), update=editor.type("a"))
    with pytest.raises(NativeError) as raised:
        await bob.request("doc.update", doc=name("native-unsub"), update=editor.type("b"))
    assert raised.value.code == "not_subscribed"
    await bob.request("ping")
    assert not [e for e in bob.events if e["event"] == "doc.update"]


async def test_actor_connections(connect, srv, session, name):
    lobby = name("l1")
    ann, ben = await connect(), await connect()
    with pytest.raises(NativeError) as raised:
        await ann.request("actor.connect", actor="lobby", key=lobby)
    assert raised.value.code == "name_required"
    with pytest.raises(NativeError) as raised:
        await ann.request("actor.connect", actor="lobby", key=lobby, params={"name": "banned"})
    assert raised.value.code == "banned"
    joined = await ann.request("actor.connect", actor="lobby", key=lobby, params={"name": "ann"})
    assert set(joined) == {"conn"}
    welcome = await ann.event("actor.event", name="welcome")
    assert welcome["actor"] == "lobby" and welcome["key"] == lobby
    await ben.request("actor.connect", actor="lobby", key=lobby, params={"name": "ben"})
    assert (await ann.event("actor.event", name="joined"))["data"] == "ben"
    with pytest.raises(NativeError) as raised:
        await ben.request("actor.connect", actor="lobby", key=lobby, params={"name": "ben"})
    assert raised.value.code == "already_connected"

    me = await ben.request("actor.call", actor="lobby", key=lobby, action="whoami")
    assert me["params"] == {"name": "ben"} and me["state"] == {"name": "ben"}
    assert me["id"] != joined["conn"]
    assert await ann.request("actor.call", actor="lobby", key=lobby, action="online") \
        == ["ann", "ben"]
    await ann.request("actor.call", actor="lobby", key=lobby, action="say", args=["hi"])
    for client in (ann, ben):
        said = await client.event("actor.event", name="said")
        assert said["data"] == {"who": "ann", "text": "hi"}
    # Over HTTP there is no connection: the action sees self.conn = None.
    resp = await session.post(f"{srv.http_url}/api/actors/lobby/{lobby}/actions/whoami")
    assert (await resp.json())["result"] is None

    await ben.close()  # the socket closing disconnects it
    assert (await ann.event("actor.event", name="left"))["data"] == "ben"
    assert await ann.request("actor.call", actor="lobby", key=lobby, action="online") == ["ann"]
    await ann.request("actor.disconnect", actor="lobby", key=lobby)
    with pytest.raises(NativeError) as raised:
        await ann.request("actor.disconnect", actor="lobby", key=lobby)
    assert raised.value.code == "not_connected"


async def test_a_connected_actor_stays_awake_and_sleeps_after(connect, srv, session, name):
    async def health() -> dict:
        return await (await session.get(f"{srv.http_url}/healthz")).json()

    client = await connect()
    await client.request("actor.connect", actor="lobby", key=name("awake"), params={"name": "x"})
    loads = (await health())["loads"]
    await asyncio.sleep(1.5)  # three idle timeouts: a connected actor must not sleep
    assert (await client.request("actor.call", actor="lobby", key=name("awake"),
                                 action="online")) == ["x"]
    assert (await health())["loads"] == loads  # the same instance answered
    await client.request("actor.disconnect", actor="lobby", key=name("awake"))

    async def all_asleep() -> bool:
        return (await health())["actors"] == 0
    await until(all_asleep)  # nobody connected: it hibernates
    await client.request("actor.call", actor="lobby", key=name("awake"), action="online")
    assert (await health())["loads"] == loads + 1


@pytest.mark.parametrize(("fields", "code"), [
    ({"op": "nope"}, "unknown_op"),
    ({"op": "doc.subscribe"}, "bad_request"),
    ({"op": "doc.subscribe", "doc": 7}, "bad_request"),
    ({"op": "doc.subscribe", "doc": "../x"}, "invalid_name"),
    ({"op": "doc.subscribe", "doc": "bad-sv", "sv": b"\xff\xff"}, "invalid_payload"),
    ({"op": "doc.update", "doc": "never", "update": b"\x00\x00"}, "not_subscribed"),
    ({"op": "actor.call", "actor": "nosuch", "key": "k", "action": "a"}, "unknown_actor_type"),
    ({"op": "actor.call", "actor": "counter", "key": "k", "action": "nosuch"},
     "unknown_action"),
    ({"op": "actor.call", "actor": "counter", "key": "k", "action": "increment",
      "args": [1, 2, 3]}, "invalid_arguments"),
    ({"op": "actor.call", "actor": "counter", "key": "k", "action": "increment",
      "args": "1"}, "bad_request"),
    ({"op": "actor.call", "actor": "counter", "key": "k", "action": "fail_after_change"},
     "refused"),
    ({"op": "actor.call", "actor": "counter", "key": "k", "action": "crash"}, "internal"),
    ({"op": "actor.call", "actor": "lobby", "key": "k", "action": "unsendable"}, "internal"),
    ({"op": "actor.queue", "actor": "counter", "key": "k", "queue": "q"}, "bad_request"),
    ({"op": "actor.queue", "actor": "counter", "key": "k", "queue": "q", "message": 1},
     "unknown_queue"),
])
async def test_bad_requests_get_errors_and_the_socket_carries_on(connect, fields, code, name):
    client = await connect()
    await client.request("doc.subscribe", doc=name("survivor"))
    with pytest.raises(NativeError) as raised:
        await client.request(**fields)
    assert raised.value.code == code and raised.value.message
    assert await client.request("ping") is None
    saved = await client.request("doc.update", doc=name("survivor"), update=Editor().type("ok"))
    assert saved["seq"] >= 1


async def test_a_rejected_update_is_not_applied(connect, name):
    alice, bob = await connect(), await connect()
    for client in (alice, bob):
        await client.request("doc.subscribe", doc=name("native-bad-update"))
    with pytest.raises(NativeError) as raised:
        await alice.request("doc.update", doc=name("native-bad-update"), update=b"\x01\x02\x03")
    assert raised.value.code == "invalid_payload"
    assert (await alice.request("doc.update", doc=name("native-bad-update"),
                                update=Editor().type("fine")))["seq"] == 1
    await bob.event("doc.update")


@pytest.mark.parametrize("frame", [
    b"\xc1",  # never-used msgpack byte
    msgpack.packb([1, 2]),  # not a map
    msgpack.packb({"id": 5}),  # no op
    msgpack.packb({"id": [1], "op": "ping"}),  # id of the wrong type
    msgpack.packb({"id": 1, "op": "ping", "x": msgpack.ExtType(3, b"")}),
    "{not json",
    '["a list"]',
    '{"id": 9, "op": "doc.subscribe", "doc": "b64", "sv": "***"}',
])
async def test_malformed_frames_get_an_error_with_the_id_when_known(connect, frame):
    client = await connect()
    await client.send_raw(frame)
    answer = await client.wait_for(lambda: client.orphans and client.orphans[-1])
    assert answer["ok"] is False
    assert answer["error"]["code"] in ("malformed", "bad_request")
    if frame in (msgpack.packb({"id": 5}),):
        assert answer["id"] == 5
    assert await client.request("ping") is None


async def test_requests_without_an_id_are_answered_only_on_error(connect, name):
    client = await connect()
    await client.request("doc.subscribe", doc=name("notify"))
    await client.notify("doc.update", doc=name("notify"), update=Editor().type("quiet"))
    await client.notify("doc.update", doc=name("nope"), update=b"\x00\x00")
    answer = await client.wait_for(lambda: client.orphans and client.orphans[-1])
    assert answer == {"id": None, "ok": False, "error": answer["error"]}
    assert answer["error"]["code"] == "not_subscribed"
    fresh = await connect()
    state = await fresh.request("doc.subscribe", doc=name("notify"))
    replica = Doc()
    replica.apply_update(fresh.binary(state["update"]))
    assert text_of(replica) == "quiet"
