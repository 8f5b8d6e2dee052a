"""Chat rooms against a real server over `/ws` and HTTP: the same order for every
member, acknowledged messages surviving kill -9, retried sends after a restart
posting nothing, limits over the wire, and the history endpoint's errors."""

from __future__ import annotations

import asyncio

import pytest

from tests.nclient import NativeError, NClient

ROOM = {"actor": "room"}


async def join(session, srv, room: str, user: str) -> NClient:
    client = await NClient.connect(session, srv.http_url)
    await client.request("actor.connect", **ROOM, key=room, params={"user": user})
    return client


def call(client: NClient, room: str, action: str, *args, **kwargs):
    return client.request("actor.call", **ROOM, key=room, action=action, args=list(args),
                          kwargs=kwargs)


def seqs_of(client: NClient) -> list[int]:
    return [e["data"]["seq"] for e in client.events
            if e["event"] == "actor.event" and e["name"] == "message"]


async def test_every_member_sees_the_same_order(server, session):
    members = [await join(session, server, "order", f"u{i}") for i in range(4)]

    async def chat(index: int, client: NClient) -> None:
        for n in range(15):
            await call(client, "order", "send", f"{index}-{n}", f"message {n} from {index}")

    await asyncio.gather(*(chat(i, c) for i, c in enumerate(members[:3])))
    for client in members:
        await client.wait_for(lambda c=client: len(seqs_of(c)) == 45)
        assert seqs_of(client) == list(range(1, 46))
    bodies = [[e["data"]["body"] for e in c.events if e.get("name") == "message"]
              for c in members]
    assert all(b == bodies[0] for b in bodies)
    for client in members:
        await client.close()


async def test_acknowledged_messages_survive_kill_9_and_retries_post_nothing(server_factory,
                                                                           session):
    srv = server_factory("chat")
    client = await join(session, srv, "durable", "ann")
    acked = {}
    for n in range(18):  # within the rate limit's burst
        answer = await call(client, "durable", "send", f"c-{n}", f"hello {n}")
        acked[f"c-{n}"] = answer["seq"]
    srv.kill()
    await client.close()
    srv.start()
    client = await join(session, srv, "durable", "ann")
    page = await call(client, "durable", "history", after=0, limit=200)
    assert [m["client_id"] for m in page["messages"]] == list(acked)
    assert [m["seq"] for m in page["messages"]] == list(range(1, 19))
    # The client never saw the last answers, so it resends: nothing is posted twice.
    for client_id in list(acked)[-5:]:
        answer = await call(client, "durable", "send", client_id, "resent")
        assert answer["seq"] == acked[client_id] and answer["message"]["body"] != "resent"
    assert (await call(client, "durable", "send", "c-new", "after"))["seq"] == 19
    await client.close()


async def test_presence_typing_and_receipts_over_the_wire(server, session):
    ann_phone = await join(session, server, "lobby", "ann")
    ann_laptop = await join(session, server, "lobby", "ann")
    bob = await join(session, server, "lobby", "bob")
    users = (await call(bob, "lobby", "presence"))["users"]
    assert {"user": "ann", "devices": 2} in users
    await call(ann_phone, "lobby", "send", "p-1", "hi bob")
    assert (await call(bob, "lobby", "unread"))["count"] == 1
    await call(bob, "lobby", "typing")
    await ann_laptop.event("actor.event", name="typing")
    await call(bob, "lobby", "read", 1)
    assert (await call(bob, "lobby", "unread"))["count"] == 0
    await ann_phone.close()  # one device left: ann stays online
    await ann_laptop.close()
    offline = await bob.event("actor.event", name="presence",
                              data={"user": "ann", "status": "offline", "devices": 0})
    assert offline
    await bob.close()


async def test_limits_answer_errors_and_the_socket_carries_on(server, session):
    client = await join(session, server, "limits", "ann")
    with pytest.raises(NativeError) as raised:
        await call(client, "limits", "send", "big", "x" * 20_000)
    assert raised.value.code == "message_too_large"
    codes = []
    for n in range(40):  # faster than 10/s with a burst of 20
        try:
            await call(client, "limits", "send", f"r-{n}", "spam")
        except NativeError as exc:
            codes.append(exc.code)
    assert codes and set(codes) == {"rate_limited"}
    assert await client.request("ping") is None
    page = await call(client, "limits", "history")
    assert len(page["messages"]) == 40 - len(codes)
    await client.close()


async def test_history_over_http(server, session):
    client = await join(session, server, "http-history", "ann")
    for n in range(7):
        await call(client, "http-history", "send", f"h-{n}", f"m{n}")
    url = f"{server.http_url}/api/rooms/http-history/messages"
    page = await (await session.get(url, params={"before": "6", "limit": "3"})).json()
    assert [m["seq"] for m in page["messages"]] == [3, 4, 5] and page["has_more"]
    page = await (await session.get(url, params={"after": "5"})).json()
    assert [m["seq"] for m in page["messages"]] == [6, 7] and not page["has_more"]
    for params, code in [({"before": "x"}, "invalid_query"), ({"limit": "0"},
                         "invalid_arguments"), ({"page": "1"}, "invalid_query")]:
        resp = await session.get(url, params=params)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == code
    resp = await session.get(f"{server.http_url}/api/rooms/../x/messages")
    assert resp.status in (400, 404)
    await client.close()
