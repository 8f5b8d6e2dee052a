"""The Store conformance suite: every back end must pass all of it.

Parametrized by back end through the `store` fixture; Postgres joins the list
when its store lands.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from collab.config import Settings
from collab.storage import open_store
from collab.storage.base import (
    AppendUpdate,
    DeleteQueueMessage,
    DeleteTimer,
    PutActorState,
    PutQueueMessage,
    PutRoomMessage,
    PutTimer,
    PutWorkflow,
    QueueRecord,
    ReplaceSnapshot,
    RoomMessage,
    StoredDocument,
    TimerRecord,
    WorkflowRecord,
)
from collab.storage.schema import LATEST_VERSION

BACKENDS = {
    # NORMAL commits run on the event loop; FULL commits on the writer thread.
    "sqlite": {"sqlite_synchronous": "NORMAL"},
    "sqlite-full": {"sqlite_synchronous": "FULL"},
}


@pytest.fixture(params=list(BACKENDS))
async def store(request, tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/store.db", **BACKENDS[request.param])
    store = open_store(settings)
    await store.open()
    yield store
    await store.close()


async def test_empty_document(store):
    assert await store.load_document("nothing") == StoredDocument()


async def test_append_and_load_in_order(store):
    await store.write([AppendUpdate("a", 2, b"two"), AppendUpdate("a", 1, b"one")])
    await store.write([AppendUpdate("b", 1, b"other")])
    loaded = await store.load_document("a")
    assert loaded.updates == [(1, b"one"), (2, b"two")]
    assert loaded.last_seq == 2 and loaded.snapshot is None


async def test_snapshot_covers_and_deletes_rows(store):
    await store.write([AppendUpdate("a", i, b"u%d" % i) for i in range(1, 6)])
    await store.write([ReplaceSnapshot("a", 3, b"snap")])
    loaded = await store.load_document("a")
    assert loaded.snapshot == b"snap" and loaded.snapshot_seq == 3
    assert loaded.updates == [(4, b"u4"), (5, b"u5")]


async def test_snapshot_in_same_batch_as_its_rows(store):
    await store.write([AppendUpdate("a", 1, b"x"), AppendUpdate("a", 2, b"y"),
                       ReplaceSnapshot("a", 1, b"s")])
    loaded = await store.load_document("a")
    assert (loaded.snapshot, loaded.snapshot_seq, loaded.updates) == (b"s", 1, [(2, b"y")])


async def test_older_snapshot_never_replaces_newer(store):
    await store.write([ReplaceSnapshot("a", 5, b"new")])
    await store.write([ReplaceSnapshot("a", 2, b"old")])
    assert (await store.load_document("a")).snapshot == b"new"


async def test_failed_batch_writes_nothing(store):
    await store.write([AppendUpdate("a", 1, b"x")])
    with pytest.raises(Exception):  # noqa: B017 - each back end raises its own error type
        await store.write([AppendUpdate("a", 2, b"y"), AppendUpdate("a", 1, b"dup")])
    assert (await store.load_document("a")).updates == [(1, b"x")]


async def test_migrate_is_idempotent_and_versioned(store):
    assert await store.migrate() == LATEST_VERSION
    assert await store.migrate() == LATEST_VERSION


async def test_ping(store):
    await store.ping()


async def test_sqlite_pragmas(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/p.db", sqlite_synchronous="FULL")
    store = open_store(settings)
    await store.open()
    def pragma(name):
        return lambda conn: conn.execute(f"PRAGMA {name}").fetchone()[0]

    assert await store.in_writer(pragma("synchronous")) == 2  # FULL
    assert await store.in_writer(pragma("journal_mode")) == "wal"
    assert await store.in_writer(pragma("busy_timeout")) == 5000
    await store.close()
    with sqlite3.connect(tmp_path / "p.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_concurrent_loads(store):
    await store.write([AppendUpdate(f"d{i}", 1, b"x") for i in range(50)])
    loaded = await asyncio.gather(*(store.load_document(f"d{i}") for i in range(50)))
    assert all(doc.updates == [(1, b"x")] for doc in loaded)


async def test_sqlite_commit_waits_for_another_writer(tmp_path):
    """A lock held by another process (here: another connection) delays the batch
    off the event loop instead of failing it."""
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path}/lock.db"))
    await store.open()
    other = sqlite3.connect(tmp_path / "lock.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    write = asyncio.ensure_future(store.write([AppendUpdate("a", 1, b"x")]))
    await asyncio.sleep(0.2)
    assert not write.done()
    other.execute("COMMIT")
    await asyncio.wait_for(write, 5)
    assert (await store.load_document("a")).updates == [(1, b"x")]
    other.close()
    await store.close()


async def test_sqlite_wal_is_checkpointed(tmp_path):
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path}/wal.db"))
    await store.open()
    for seq in range(1, 2501):
        await store.write([AppendUpdate("a", seq, b"x" * 100)])
    # Each commit appends two pages (table and key index) to the WAL: 2500 commits
    # without checkpoints make it about 20 MiB. Checkpointed every 1000 commits,
    # SQLite reuses it from the start and it stays near 1000 commits' worth.
    assert (tmp_path / "wal.db-wal").stat().st_size < 2500 * 2 * 4120 * 0.6
    await store.close()


async def test_sqlite_checkpoint_leaves_no_statement_open(tmp_path):
    """A checkpoint's result row must be consumed: an open statement on the writer
    makes the next COMMIT fail ("SQL statements in progress")."""
    from collab.storage.sqlite import _checkpoint

    store = open_store(Settings(database_url=f"sqlite:///{tmp_path}/ck.db"))
    await store.open()
    await store.write([AppendUpdate("a", 1, b"x")])
    kept = await store.in_writer(_checkpoint)  # whatever it returns stays referenced
    await store.write([AppendUpdate("a", 2, b"y")])
    assert kept is None
    assert len((await store.load_document("a")).updates) == 2
    await store.close()


async def test_actor_state_last_write_wins(store):
    assert await store.load_actor_state("counter", "a") is None
    await store.write([PutActorState("counter", "a", b"1"), PutActorState("counter", "b", b"x"),
                       PutActorState("counter", "a", b"2")])
    assert await store.load_actor_state("counter", "a") == b"2"
    assert await store.load_actor_state("counter", "b") == b"x"
    assert await store.load_actor_state("other", "a") is None


async def test_timers(store):
    assert await store.next_timer_due() is None
    early = TimerRecord("c", "a", "t1", 100.0, "tick", b"\x90")
    late = TimerRecord("c", "a", "t2", 300.0, "tick", b"\x90", cron="* * * * *", tz="UTC")
    other = TimerRecord("c", "b", "t1", 200.0, "tock", b"\x90")
    await store.write([PutTimer(late), PutTimer(other), PutTimer(early)])
    assert await store.load_timers("c", "a") == [early, late]
    assert await store.next_timer_due() == 100.0
    assert await store.actors_with_timers_due(250.0, 10) == [("c", "a"), ("c", "b")]
    assert await store.actors_with_timers_due(150.0, 10) == [("c", "a")]
    moved = TimerRecord("c", "a", "t1", 400.0, "tick", b"\x90", attempts=1)
    await store.write([PutTimer(moved), DeleteTimer("c", "b", "t1")])
    assert await store.load_timers("c", "a") == [late, moved]
    assert await store.actors_with_timers_due(250.0, 10) == []


async def test_queues(store):
    first = QueueRecord("c", "a", "jobs", 1, b"\x01", enqueued_at=1.0)
    second = QueueRecord("c", "a", "jobs", 2, b"\x02", enqueued_at=2.0)
    other = QueueRecord("c", "a", "alpha", 1, b"\x03", enqueued_at=3.0)
    await store.write([PutQueueMessage(second), PutQueueMessage(first), PutQueueMessage(other)])
    assert await store.load_queues("c", "a") == [other, first, second]
    dead = QueueRecord("c", "a", "jobs", 2, b"\x02", attempts=5, dead=True, error="boom",
                       enqueued_at=2.0)
    await store.write([DeleteQueueMessage("c", "a", "jobs", 1), PutQueueMessage(dead)])
    assert await store.load_queues("c", "a") == [other, dead]
    assert await store.load_queues("c", "b") == []


async def test_workflows(store):
    run = WorkflowRecord("c", "a", "w1", "onboard", b"\x90", "running", b"\x80",
                         created_at=1.0, updated_at=1.0)
    await store.write([PutWorkflow(run)])
    done = WorkflowRecord("c", "a", "w1", "onboard", b"\x90", "done", b"\x81\xa1s\x01",
                          result=b"\x02", created_at=1.0, updated_at=2.0)
    later = WorkflowRecord("c", "a", "w2", "other", b"\x90", "failed", b"\x80",
                           error="boom", created_at=3.0, updated_at=3.0)
    await store.write([PutWorkflow(done), PutWorkflow(later)])
    assert await store.load_workflows("c", "a") == [done, later]
    assert await store.load_workflows("c", "b") == []


def _message(seq: int, *, room: str = "r", user: str = "ann", **changes) -> RoomMessage:
    fields = {"client_id": f"c{seq}", "body": f"m{seq}", "meta": None,
              "created_at": float(seq), **changes}
    return RoomMessage(room, seq, user=user, **fields)


async def test_room_messages_page_by_seq(store):
    await store.write([PutRoomMessage(_message(seq)) for seq in (3, 1, 5, 2, 4)])
    await store.write([PutRoomMessage(_message(1, room="other"))])
    seqs = [m.seq for m in await store.load_room_messages("r", limit=10)]
    assert seqs == [1, 2, 3, 4, 5]
    # The newest page, still in ascending order, then the page before it.
    assert [m.seq for m in await store.load_room_messages("r", limit=2)] == [4, 5]
    assert [m.seq for m in await store.load_room_messages("r", before=4, limit=2)] == [2, 3]
    assert [m.seq for m in await store.load_room_messages("r", before=2, limit=2)] == [1]
    # Catching up: the oldest rows after a seq.
    assert [m.seq for m in await store.load_room_messages("r", after=1, limit=2)] == [2, 3]
    assert [m.seq for m in await store.load_room_messages("r", after=5, limit=2)] == []
    # Both bounds: the newest rows strictly between them.
    assert [m.seq for m in await store.load_room_messages("r", before=5, after=1,
                                                           limit=2)] == [3, 4]
    assert await store.load_room_messages("nobody", limit=10) == []


async def test_room_message_round_trips_every_field(store):
    full = _message(1, meta=b"\x81\xa1k\x01", edited_at=2.5, deleted=True, body="",
                    reactions=b"\x81\xa1+\x91\xa3ann")
    await store.write([PutRoomMessage(full), PutRoomMessage(_message(2))])
    assert await store.load_room_messages("r", limit=10) == [full, _message(2)]
    assert await store.find_room_message("r", "c1") == full
    assert await store.find_room_message("r", "nope") is None
    assert await store.find_room_message("other", "c1") is None


async def test_room_message_put_replaces_by_seq(store):
    await store.write([PutRoomMessage(_message(1))])
    edited = _message(1, body="fixed", edited_at=9.0)
    tombstone = _message(1, body="", deleted=True, edited_at=9.0)
    await store.write([PutRoomMessage(edited), PutRoomMessage(tombstone)])  # the last one wins
    assert await store.load_room_messages("r", limit=10) == [tombstone]


async def test_room_client_id_is_unique_per_room(store):
    await store.write([PutRoomMessage(_message(1, client_id="same")),
                       PutRoomMessage(_message(1, room="other", client_id="same"))])
    with pytest.raises(Exception):  # noqa: B017 - each back end raises its own error type
        await store.write([PutRoomMessage(_message(2, client_id="same"))])
    assert [m.seq for m in await store.load_room_messages("r", limit=10)] == [1]


async def test_room_last_seq_and_unread_count(store):
    assert await store.room_last_seq("r") == 0
    await store.write([PutRoomMessage(_message(1)), PutRoomMessage(_message(2, user="bob")),
                       PutRoomMessage(_message(3, user="bob", deleted=True, body="")),
                       PutRoomMessage(_message(4, user="bob")), PutRoomMessage(_message(5))])
    assert await store.room_last_seq("r") == 5
    assert await store.room_last_seq("other") == 0
    assert await store.count_room_messages("r", after=0, exclude_user=None) == 4
    assert await store.count_room_messages("r", after=0, exclude_user="ann") == 2
    assert await store.count_room_messages("r", after=2, exclude_user="ann") == 1
    assert await store.count_room_messages("r", after=5, exclude_user=None) == 0
