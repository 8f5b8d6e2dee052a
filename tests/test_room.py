"""The Room actor in-process on a real SQLite store: sequenced and idempotent
sends, edits, tombstones, reactions, history paging (from memory and from the
store), typing, read receipts, presence, limits, and durability across
hibernation and restart. Clients are real `Conn`s over a recording peer."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import collab
from collab.actors.room import Message, Presence, RecentWindow, Room
from collab.errors import StoreUnavailable
from collab.protocol.native import Outgoing
from collab.runtime.actions import ActionError, CallAction
from collab.runtime.buckets import Meters, TokenBucket
from collab.runtime.connections import Connect, Disconnect
from collab.runtime.refs import ActorRef
from tests.inproc import Runtime
from tests.waits import TIMEOUT, until


class SmallRoom(Room):
    """Holds 3 messages in memory, so history, retries and unread counts reach the store."""

    kind = "small_room"
    RECENT_WINDOW = 3


class StrictRoom(Room):
    """Limits small enough to reach in a test without depending on the clock."""

    kind = "strict_room"
    RATE_PER_SECOND = 0.001
    RATE_BURST = 3
    MAX_REACTIONS = 2


class QuickTypingRoom(Room):
    kind = "quick_typing_room"
    TYPING_TTL = 0.05


class PatientRoom(Room):
    """Typing never expires by itself within a test, however slow the machine."""

    kind = "patient_room"
    TYPING_TTL = 3600.0


registry = collab.Registry(Room, SmallRoom, StrictRoom, QuickTypingRoom, PatientRoom)


@pytest.fixture
def actor_registry():
    return registry


@pytest.fixture
def actor_idle_timeout():
    return 30.0  # rooms stay loaded unless a test says otherwise




class Device:
    """One client socket: connects to rooms, calls actions, records the events it gets."""

    _count = 0

    def __init__(self, rt: Runtime, user: str | None, room: type[Room] = Room,
                 key: str = "lobby") -> None:
        Device._count += 1
        self.id = f"dev{Device._count}"
        self.rt, self.user, self.room, self.key = rt, user, room, key
        self.closed = False
        self.events: list[tuple[str, Any]] = []

    # the Peer side
    def send_out(self, out: Outgoing) -> None:
        out.frame(binary=True)
        out.frame(binary=False)  # every event must encode for JSON clients too
        message = out.message
        assert message["event"] == "actor.event"
        assert (message["actor"], message["key"]) == (self.room.kind, self.key)
        self.events.append((message["name"], message["data"]))

    def close(self, code: int, reason: str) -> None:
        self.closed = True
        self.events.append(("closed", code))

    async def _ask(self, make) -> Any:
        reply = asyncio.get_running_loop().create_future()
        self.rt.system.post(self.room, self.key, make(reply))
        return await asyncio.wait_for(reply, TIMEOUT)

    async def connect(self, params: dict | None = None) -> Device:
        params = {"user": self.user} if params is None else params
        await self._ask(lambda reply: Connect(self, params, reply))
        return self

    async def disconnect(self) -> None:
        await self._ask(lambda reply: Disconnect(self, reply))

    async def call(self, action: str, *args: Any, **kwargs: Any) -> Any:
        return await self._ask(lambda reply: CallAction(action, args, kwargs, reply, peer=self))

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]


async def connected(rt: Runtime, user: str, room: type[Room] = Room,
                    key: str = "lobby") -> Device:
    return await Device(rt, user, room, key).connect()


def http(rt: Runtime, room: type[Room] = Room, key: str = "lobby") -> ActorRef:
    """A caller without a connection, like the HTTP API or another actor."""
    return ActorRef(rt.system, room, key)


async def refused(code: str, call) -> ActionError:
    with pytest.raises(ActionError) as info:
        await call
    assert info.value.code == code, info.value
    return info.value


# -- sending ----------------------------------------------------------------------------


async def test_messages_get_seqs_and_reach_everyone_in_order_after_commit(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    results = await asyncio.gather(*(ann.call("send", f"c{i}", f"hello {i}")
                                      for i in range(1, 6)))
    assert [r["seq"] for r in results] == [1, 2, 3, 4, 5]
    stored = await runtime.store.load_room_messages("lobby", limit=10)
    assert [(row.seq, row.body, row.user) for row in stored] == [
        (i, f"hello {i}", "ann") for i in range(1, 6)]  # durable when acknowledged
    await until(lambda: len(bob.named("message")) == 5)
    assert [m["seq"] for m in bob.named("message")] == [1, 2, 3, 4, 5]
    assert ann.named("message") == bob.named("message")  # the sender hears it too
    first = bob.named("message")[0]
    assert first == results[0]["message"]
    assert set(first) == {"seq", "client_id", "user", "body", "meta", "created_at",
                          "edited_at", "deleted", "reactions"}
    assert (first["client_id"], first["meta"], first["edited_at"], first["deleted"],
            first["reactions"]) == ("c1", None, None, False, {})


async def test_meta_round_trips(runtime):
    ann = await connected(runtime, "ann")
    meta = {"reply_to": 1, "mentions": ["bob"], "nested": {"a": [1.5, None, True]}}
    sent = await ann.call("send", "c1", "hi", meta)
    assert sent["message"]["meta"] == meta
    row = await runtime.store.find_room_message("lobby", "c1")
    assert Message.from_record(row).meta == meta


async def test_retried_send_returns_the_original_and_posts_nothing(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    first = await ann.call("send", "same", "hello")
    again = await ann.call("send", "same", "hello (retried)")
    assert again == first
    await ann.call("send", "next", "after")
    await until(lambda: len(bob.named("message")) == 2)
    assert [m["client_id"] for m in bob.named("message")] == ["same", "next"]
    assert len(await runtime.store.load_room_messages("lobby", limit=10)) == 2


async def test_retries_concurrent_with_the_original_get_one_message(runtime):
    ann = await connected(runtime, "ann")
    results = await asyncio.gather(*(ann.call("send", "dup", "x") for _ in range(5)))
    assert {r["seq"] for r in results} == {1}
    assert len(await runtime.store.load_room_messages("lobby", limit=10)) == 1


async def test_retry_found_in_the_store_beyond_the_window(runtime):
    ann = await connected(runtime, "ann", SmallRoom)
    first = await ann.call("send", "old", "the first")
    for i in range(5):  # pushes "old" out of the 3-message window
        await ann.call("send", f"c{i}", "more")
    assert await ann.call("send", "old", "again") == first
    assert (await ann.call("history"))["messages"][-1]["seq"] == 6


async def test_retry_after_hibernation(runtime_factory):
    rt = runtime_factory(registry, "h", idle_timeout=0.05)
    await rt.start()
    first = await http(rt).call("send", "c1", "before the nap", user="ann")
    await until(lambda: rt.system.loaded_count == 0)  # hibernated
    assert await http(rt).call("send", "c1", "retried", user="ann") == first
    second = await http(rt).call("send", "c2", "after the nap", user="ann")
    assert second["seq"] == 2
    await rt.stop()


async def test_a_failed_commit_is_held_back_then_written_and_announced(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    await ann.call("send", "c1", "fine")
    # The store refuses one body: a real SQLite failure, inside the real commit path.
    db = sqlite3.connect(runtime.path, isolation_level=None)
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON room_messages WHEN NEW.body = 'boom' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    with pytest.raises(sqlite3.IntegrityError):
        await ann.call("send", "c2", "boom")
    # Not acknowledged, not announced, and history (durable messages only) waits for it.
    with pytest.raises(StoreUnavailable):
        await bob.call("history")
    assert [m["body"] for m in bob.named("message")] == ["fine"]
    db.execute("DROP TRIGGER refuse")
    db.close()
    # The kept row is written again by itself, and only then announced.
    await until(lambda: len(bob.named("message")) == 2)
    assert [m["body"] for m in bob.named("message")] == ["fine", "boom"]
    retried = await ann.call("send", "c2", "boom")  # the retry gets the original
    assert retried["message"]["body"] == "boom" and retried["seq"] == 2
    history = await bob.call("history")
    assert [m["body"] for m in history["messages"]] == ["fine", "boom"]
    rows = await runtime.store.load_room_messages("lobby", limit=10)
    assert [row.body for row in rows] == ["fine", "boom"]


# -- edit, delete, react --------------------------------------------------------------------


async def test_edit_by_the_author_only(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    await ann.call("send", "c1", "helo")
    edited = (await ann.call("edit", 1, "hello"))["message"]
    assert edited["body"] == "hello" and edited["edited_at"] >= edited["created_at"]
    await until(lambda: bob.named("edit") == [edited])
    await refused("forbidden", bob.call("edit", 1, "mine now"))
    row = (await runtime.store.load_room_messages("lobby", limit=1))[0]
    assert (row.body, row.edited_at) == ("hello", edited["edited_at"])


async def test_delete_leaves_a_tombstone_and_paging_stays_stable(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    for i in range(1, 5):
        await ann.call("send", f"c{i}", f"m{i}", {"k": i})
    await ann.call("react", 2, "+1")
    await refused("forbidden", bob.call("delete", 2))
    gone = (await ann.call("delete", 2))["message"]
    assert (gone["seq"], gone["deleted"], gone["body"], gone["meta"], gone["reactions"]) \
        == (2, True, "", None, {})
    assert (await ann.call("delete", 2))["message"] == gone  # twice is harmless
    await until(lambda: bob.named("delete") == [gone])
    page = await bob.call("history", before=4, limit=2)
    assert [(m["seq"], m["deleted"]) for m in page["messages"]] == [(2, True), (3, False)]
    assert page["has_more"] is True
    await refused("message_deleted", ann.call("edit", 2, "undo"))
    await refused("message_deleted", bob.call("react", 2, "+1"))
    row = (await runtime.store.load_room_messages("lobby", before=3, after=1, limit=1))[0]
    assert (row.deleted, row.body, row.meta) == (True, "", None)


async def test_reactions_are_a_set_per_user_and_emoji(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    await ann.call("send", "c1", "vote")
    await ann.call("react", 1, "👍")
    await bob.call("react", 1, "👍")
    await bob.call("react", 1, "👍")  # again: no change, no event
    await bob.call("react", 1, "🎉")
    after_remove = (await ann.call("react", 1, "👍", False))["message"]
    assert after_remove["reactions"] == {"👍": ["bob"], "🎉": ["bob"]}
    await until(lambda: len(bob.named("reaction")) == 4)
    assert bob.named("reaction")[0] == {"seq": 1, "user": "ann", "emoji": "👍", "add": True,
                                        "reactions": {"👍": ["ann"]}}
    assert bob.named("reaction")[-1]["reactions"] == after_remove["reactions"]
    await bob.call("react", 1, "🎉", add=False)
    history = await ann.call("history")
    assert history["messages"][0]["reactions"] == {"👍": ["bob"]}
    row = await runtime.store.find_room_message("lobby", "c1")
    assert Message.from_record(row).reactions == {"👍": ["bob"]}


async def test_edits_of_messages_only_the_store_holds(runtime):
    ann = await connected(runtime, "ann", SmallRoom)
    for i in range(1, 8):
        await ann.call("send", f"c{i}", f"m{i}")
    # Two changes in a row to one old row: the second must see the first.
    await ann.call("react", 1, "a")
    await ann.call("react", 1, "b")
    await ann.call("edit", 1, "first, edited")
    await ann.call("delete", 2)
    page = await ann.call("history", before=3)
    assert [(m["body"], m["reactions"], m["deleted"]) for m in page["messages"]] == [
        ("first, edited", {"a": ["ann"], "b": ["ann"]}, False), ("", {}, True)]


# -- history --------------------------------------------------------------------------------


@pytest.mark.parametrize("room", [Room, SmallRoom], ids=["window", "store"])
async def test_history_pages_back_and_catches_up(runtime, room):
    ann = await connected(runtime, "ann", room)
    for i in range(1, 11):
        await ann.call("send", f"c{i}", f"m{i}")
    newest = await ann.call("history", limit=4)
    assert [m["seq"] for m in newest["messages"]] == [7, 8, 9, 10] and newest["has_more"]
    seen, before = [], None
    while True:  # scroll back to the start
        page = await ann.call("history", before=before, limit=4)
        seen = [m["seq"] for m in page["messages"]] + seen
        if not page["has_more"]:
            break
        before = page["messages"][0]["seq"]
    assert seen == list(range(1, 11))
    caught_up, after = [], 0
    while True:  # catch up from a known seq, oldest first
        page = await ann.call("history", after=after, limit=3)
        caught_up += [m["seq"] for m in page["messages"]]
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    assert caught_up == list(range(1, 11))
    between = await ann.call("history", before=9, after=2, limit=3)
    assert [m["seq"] for m in between["messages"]] == [6, 7, 8] and between["has_more"]
    assert (await ann.call("history", after=10)) == {"messages": [], "has_more": False}
    everything = await ann.call("history", limit=200)
    assert len(everything["messages"]) == 10 and not everything["has_more"]


async def test_history_of_an_empty_room(runtime):
    assert await http(runtime).call("history") == {"messages": [], "has_more": False}


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"limit": 201}, {"limit": "10"},
                                    {"before": -1}, {"after": 1.5}, {"before": True}])
async def test_history_refuses_bad_bounds(runtime, kwargs):
    await refused("invalid_arguments", http(runtime).call("history", **kwargs))


# -- typing, read receipts, presence ------------------------------------------------------------


async def test_typing_expires_by_itself(runtime):
    ann = await connected(runtime, "ann", QuickTypingRoom)
    bob = await connected(runtime, "bob", QuickTypingRoom)
    await ann.call("typing")
    await until(lambda: len(bob.named("typing")) == 2)
    assert bob.named("typing") == [{"user": "ann", "active": True},
                                   {"user": "ann", "active": False}]
    assert (await bob.call("presence"))["typing"] == []


async def test_typing_is_renewed_and_ended_by_a_send_or_leaving(runtime):
    ann = await connected(runtime, "ann", PatientRoom)
    bob = await connected(runtime, "bob", PatientRoom)
    await ann.call("typing")
    await ann.call("typing")  # renewed: no second event
    assert (await bob.call("presence"))["typing"] == ["ann"]
    await ann.call("send", "c1", "done typing")
    await bob.call("typing", True)
    await bob.call("typing", active=False)
    await bob.call("typing")
    await bob.disconnect()
    assert ann.named("typing") == [
        {"user": "ann", "active": True}, {"user": "ann", "active": False},
        {"user": "bob", "active": True}, {"user": "bob", "active": False},
        {"user": "bob", "active": True}, {"user": "bob", "active": False}]


async def test_read_receipts_and_unread_counts(runtime):
    ann, bob = await connected(runtime, "ann"), await connected(runtime, "bob")
    for i in range(1, 4):
        await ann.call("send", f"a{i}", "from ann")
    await bob.call("send", "b1", "from bob")
    await ann.call("send", "a4", "from ann")
    await ann.call("delete", 5)
    assert await bob.call("unread") == {"count": 3, "last_read": 0, "last_seq": 5}
    assert await ann.call("unread") == {"count": 1, "last_read": 0, "last_seq": 5}
    assert await bob.call("read", 2) == {"user": "bob", "seq": 2}
    assert await bob.call("read", 1) == {"user": "bob", "seq": 2}  # never goes back
    assert await bob.call("unread") == {"count": 1, "last_read": 2, "last_seq": 5}
    assert ann.named("read") == [{"user": "bob", "seq": 2}]
    assert await ann.call("receipts") == {"read": {"bob": 2}}
    await refused("unknown_message", bob.call("read", 6))
    assert await http(runtime).call("unread", user="carol") == \
        {"count": 4, "last_read": 0, "last_seq": 5}


async def test_unread_counts_from_the_store(runtime):
    ann = await connected(runtime, "ann", SmallRoom)
    bob = await connected(runtime, "bob", SmallRoom)
    for i in range(1, 8):
        await (ann if i % 2 else bob).call("send", f"c{i}", "x")
    await ann.call("delete", 3)
    await bob.call("read", 1)
    # seqs 2..7 after bob's read: ann's are 3 (deleted), 5 and 7.
    assert await bob.call("unread") == {"count": 2, "last_read": 1, "last_seq": 7}


async def test_presence_counts_devices_per_user(runtime):
    watcher = await connected(runtime, "watcher")
    phone = await connected(runtime, "ann")
    laptop = await connected(runtime, "ann")
    assert watcher.named("presence") == [  # its own arrival, then ann's first device only
        {"user": "watcher", "status": "online", "devices": 1},
        {"user": "ann", "status": "online", "devices": 1}]
    assert (await watcher.call("presence"))["users"] == [
        {"user": "ann", "devices": 2}, {"user": "watcher", "devices": 1}]
    await phone.disconnect()
    assert len(watcher.named("presence")) == 2
    assert (await watcher.call("presence"))["users"][0] == {"user": "ann", "devices": 1}
    await laptop.disconnect()
    assert watcher.named("presence")[-1] == {"user": "ann", "status": "offline", "devices": 0}
    assert (await watcher.call("presence"))["users"] == [{"user": "watcher", "devices": 1}]


# -- identity and limits ------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"user": ""}, {"user": 7}, {"user": "u" * 129}])
async def test_connect_needs_a_user(runtime, params):
    device = Device(runtime, None)
    await refused("invalid_user", device.connect(params))
    assert (await http(runtime).call("presence"))["users"] == []


async def test_user_comes_from_the_connection_or_the_call(runtime):
    ann = await connected(runtime, "ann")
    await refused("forbidden", ann.call("send", "c1", "as bob", user="bob"))
    await refused("invalid_user", http(runtime).call("send", "c1", "who am I"))
    sent = await http(runtime).call("send", "c1", "from a server", user="bot")
    assert sent["message"]["user"] == "bot"
    await refused("forbidden", ann.call("edit", 1, "not mine"))
    assert (await http(runtime).call("edit", 1, "fixed", user="bot"))["message"]["body"] \
        == "fixed"


async def test_limits_each_have_a_code(runtime):
    ann = await connected(runtime, "ann")
    big = "é" * (Room.MAX_BODY_BYTES // 2 + 1)  # under the limit in characters, over in bytes
    await refused("message_too_large", ann.call("send", "c1", big))
    await refused("message_too_large", ann.call("send", "c1", "x",
                                                {"blob": "x" * Room.MAX_META_BYTES}))
    assert (await ann.call("send", "c1", "é" * (Room.MAX_BODY_BYTES // 2)))["seq"] == 1
    # A value of the wrong type is refused by the runtime from the action's
    # annotations (invalid_arguments); a bad value of the right type by the room.
    await refused("invalid_arguments", ann.call("send", "c2", "x", ["not", "a", "map"]))
    await refused("invalid_meta", ann.call("send", "c2", "x", {"raw": b"bytes"}))
    await refused("invalid_arguments", ann.call("send", "c2", 42))
    for bad in ("", "i" * 129):
        await refused("invalid_client_id", ann.call("send", bad, "x"))
    for bad in (5, None):
        await refused("invalid_arguments", ann.call("send", bad, "x"))
    for bad in (0, 99):
        await refused("unknown_message", ann.call("edit", bad, "x"))
    for bad in ("1", True, 1.0):
        await refused("invalid_arguments", ann.call("edit", bad, "x"))
    await refused("invalid_emoji", ann.call("react", 1, ""))
    await refused("invalid_emoji", ann.call("react", 1, "e" * 33))
    await refused("message_too_large", ann.call("edit", 1, big))
    assert (await ann.call("history"))["messages"][0]["body"] == "é" * (Room.MAX_BODY_BYTES // 2)


async def test_writes_are_rate_limited_per_connection(runtime):
    ann = await connected(runtime, "ann", StrictRoom)
    for i in range(StrictRoom.RATE_BURST):
        await ann.call("send", f"c{i}", "x")
    await refused("rate_limited", ann.call("send", "late", "x"))
    await refused("rate_limited", ann.call("react", 1, "+1"))
    await ann.call("history")  # reads are not limited
    other_device = await connected(runtime, "ann", StrictRoom)
    assert (await other_device.call("send", "late", "x"))["seq"] == 4
    # Another actor in this process names no caller: trusted.
    assert (await http(runtime, StrictRoom).call("send", "srv", "x", user="bot"))["seq"] == 5


async def test_calls_without_a_connection_are_metered_by_the_caller_they_name(runtime):
    ref = http(runtime, StrictRoom)

    def send(client_id: str, caller: str):
        return ref.ask(lambda reply: CallAction("send", (client_id, "x"), {"user": "bob"},
                                                reply, caller=caller), "send")

    for i in range(StrictRoom.RATE_BURST):
        await send(f"c{i}", "user:bob")
    await refused("rate_limited", send("late", "user:bob"))
    assert (await send("late", "addr:10.0.0.9"))["seq"] == StrictRoom.RATE_BURST + 1


async def test_reactions_per_message_are_bounded(runtime):
    ref = http(runtime, StrictRoom)
    await ref.call("send", "c1", "x", user="ann")
    await ref.call("react", 1, "a", user="ann")
    await ref.call("react", 1, "b", user="bob")
    await ref.call("react", 1, "a", user="bob")  # an existing kind is fine
    await refused("too_many_reactions", ref.call("react", 1, "c", user="ann"))


# -- durability ------------------------------------------------------------------------------


async def test_everything_survives_a_restart(runtime_factory):
    rt = runtime_factory(registry, "restart")
    await rt.start()
    ann, bob = await connected(rt, "ann"), await connected(rt, "bob")
    for i in range(1, 5):
        await ann.call("send", f"c{i}", f"m{i}", {"i": i})
    await ann.call("edit", 1, "m1 edited")
    await ann.call("delete", 2)
    await bob.call("react", 3, "🔥")
    await bob.call("read", 3)
    before = await bob.call("history")
    await rt.stop()

    await rt.start()
    bob = await connected(rt, "bob")
    assert await bob.call("history") == before
    assert await bob.call("unread") == {"count": 1, "last_read": 3, "last_seq": 4}
    assert await bob.call("receipts") == {"read": {"bob": 3}}
    retried = await http(rt).call("send", "c4", "retry after restart", user="ann")
    assert (retried["seq"], retried["message"]["body"]) == (4, "m4")
    await refused("invalid_client_id", bob.call("send", "c4", "ann's client_id"))
    assert (await bob.call("send", "b1", "new"))["seq"] == 5
    assert (await bob.call("presence"))["users"] == [{"user": "bob", "devices": 1}]
    await rt.stop()


async def test_rooms_are_independent(runtime):
    await http(runtime, key="a").call("send", "c1", "in a", user="ann")
    sent = await http(runtime, key="b").call("send", "c1", "in b", user="ann")
    assert sent["seq"] == 1 and sent["message"]["body"] == "in b"


# -- the pure parts -------------------------------------------------------------------------


def _msg(seq: int, user: str = "ann", deleted: bool = False) -> Message:
    return Message(seq, f"c{seq}", user, "" if deleted else f"m{seq}", None, float(seq),
                   deleted=deleted)


@given(st.lists(st.integers(1, 60), unique=True, max_size=25), st.integers(0, 6),
       st.one_of(st.none(), st.integers(0, 62)), st.one_of(st.none(), st.integers(0, 62)),
       st.integers(1, 8))
def test_window_pages_agree_with_the_full_list(seqs, capacity, before, after, limit):
    """Whatever the window answers is what the whole history would give."""
    messages = [_msg(seq) for seq in sorted(seqs)]
    window = RecentWindow(capacity)
    window.load(messages[-capacity - 1:] if capacity < len(messages) else messages)
    matching = [m for m in messages if (before is None or m.seq < before)
                and (after is None or m.seq > after)]
    if after is not None and before is None:
        expected = (matching[:limit], len(matching) > limit)
    else:
        expected = (matching[-limit:], len(matching) > limit)
    page = window.page(before, after, limit)
    if page is not None:
        assert page == expected
    if capacity >= len(messages):
        assert page is not None  # a window that holds everything answers everything


def test_window_evicts_the_oldest_and_forgets_its_client_id():
    window = RecentWindow(2)
    for seq in (1, 2, 3):
        window.append(_msg(seq))
    assert len(window) == 2 and window.floor == 1 and window.last_seq == 3
    assert window.find("c1") is None and window.find("c3") == _msg(3)
    assert window.count_unread(0, "bob") is None
    window.update(_msg(3, deleted=True))
    assert window.count_unread(1, "bob") == 1
    assert window.page(None, None, 2) == ([_msg(2), _msg(3, deleted=True)], True)
    assert window.page(None, None, 3) is None


def test_token_bucket_and_meters():
    bucket = TokenBucket(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(1, 100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(1, 100.5) and not bucket.take(1, 100.5)
    assert [bucket.take(1, 200.0) for _ in range(4)] == [True, True, True, False]
    meters = Meters(rate=1.0, burst=2, limit=2)
    assert [meters.take("a", 0.0) for _ in range(3)] == [True, True, False]
    assert meters.take("b", 0.0) and meters.take("a", 0.5) is False
    assert meters.take("c", 0.5) and len(meters) == 2  # "b", least recent, forgotten
    assert meters.take("a", 1.0) and not meters.take("a", 1.0)


def test_presence_table():
    table = Presence()
    assert (table.join("ann"), table.join("ann"), table.join("bob")) == (1, 2, 1)
    assert table.snapshot() == [{"user": "ann", "devices": 2}, {"user": "bob", "devices": 1}]
    assert (table.leave("ann"), table.leave("ann"), table.leave("ann")) == (1, 0, 0)
    assert table.snapshot() == [{"user": "bob", "devices": 1}]


def test_message_records_round_trip():
    message = Message(3, "c3", "ann", "hi", {"k": [1]}, 1.0, 2.0, False, {"+1": ["bob"]})
    assert Message.from_record(message.record("r")) == message
    assert json.loads(json.dumps(message.wire())) == message.wire()
    assert message.reacted("ann", "+1", True).reactions == {"+1": ["bob", "ann"]}
    assert message.reacted("bob", "+1", False).reactions == {}
    assert message.tombstone(time.time()).wire()["body"] == ""



async def test_nul_characters_are_refused(runtime):
    """Text columns (Postgres) cannot hold U+0000: refused with a clear error, not a
    failed batch that would take other actors' writes down with it."""
    room = ActorRef(runtime.system, Room, "nul")
    for args, kwargs, code in [(["c\x00", "hi"], {"user": "ann"}, "invalid_client_id"),
                               (["c1", "h\x00i"], {"user": "ann"}, "invalid_body"),
                               (["c2", "hi"], {"user": "a\x00n"}, "invalid_user")]:
        with pytest.raises(ActionError) as raised:
            await room.call("send", *args, **kwargs)
        assert raised.value.code == code
    assert (await room.call("send", "c3", "fine", user="ann"))["seq"] == 1
