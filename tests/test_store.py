"""The Store conformance suite: every back end must pass all of it.

Parametrized by back end through the `store` fixture: SQLite in both commit
modes and Postgres (a schema of each test's own, in COLLAB_TEST_DATABASE_URL).
Back-end specifics follow the shared tests.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import AsyncExitStack
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from collab.config import Settings
from collab.errors import StoreUnavailable
from collab.storage import open_store
from collab.storage.base import (
    ActorSummary,
    AppendUpdate,
    DeleteDocument,
    DeleteQueueMessage,
    DeleteTimer,
    DeleteVersion,
    DocumentReplaced,
    Fence,
    LimitUser,
    PutActorState,
    PutQueueMessage,
    PutRoomMessage,
    PutTimer,
    PutVersion,
    PutWorkflow,
    QueueRecord,
    ReplaceSnapshot,
    RevokeUser,
    RoomMessage,
    StaleOwner,
    StoredDocument,
    TimerRecord,
    VersionInfo,
    WorkflowRecord,
)
from collab.storage.postgres import PostgresStore, net_effect
from collab.storage.schema import LATEST_VERSION, MIGRATIONS
from collab.storage.sqlite import POINT_LOAD_BYTES, SQLiteStore
from tests.tcpproxy import TcpProxy
from tests.waits import until

BACKENDS = {
    # NORMAL commits run on the event loop; FULL commits on the writer thread.
    "sqlite": {"sqlite_synchronous": "NORMAL"},
    "sqlite-full": {"sqlite_synchronous": "FULL"},
    "postgres": {},
}


@pytest.fixture(params=list(BACKENDS))
async def store(request, tmp_path, pg_schema):
    async with AsyncExitStack() as stack:
        if request.param == "postgres":
            url = await stack.enter_async_context(pg_schema())
        else:
            url = f"sqlite:///{tmp_path}/store.db"
        store = open_store(Settings(database_url=url, **BACKENDS[request.param]))
        await store.open()
        stack.push_async_callback(store.close)
        yield store


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
    # Text no store can hold (a lone UTF-16 surrogate) fails the whole transaction.
    bad = RoomMessage("r", 1, "\ud800-1", "u", "body", None, 1.0)
    with pytest.raises(Exception):  # noqa: B017 - each back end raises its own error type
        await store.write([AppendUpdate("a", 2, b"y"), PutRoomMessage(bad)])
    assert (await store.load_document("a")).updates == [(1, b"x")]
    assert await store.load_room_messages("r", limit=10) == []


async def test_an_append_written_again_keeps_the_stored_row(store):
    # A writer whose commit failed late writes its rows again (runtime/writes.py).
    await store.write([AppendUpdate("a", 1, b"x")])
    await store.write([AppendUpdate("a", 1, b"x"), AppendUpdate("a", 2, b"y")])
    assert (await store.load_document("a")).updates == [(1, b"x"), (2, b"y")]


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


async def test_documents_are_listed_by_name_with_their_size(store):
    for doc, size in [("notes-b", 30), ("notes-a", 10), ("other", 5), ("notes-c", 7)]:
        await store.write([AppendUpdate(doc, 1, b"x" * size)])
    await store.write([AppendUpdate("notes-a", 2, b"y" * 4)])
    page = await store.list_documents("notes-", None, 2)
    assert [(d.name, d.bytes, d.epoch) for d in page] == [("notes-a", 14, 1), ("notes-b", 30, 1)]
    assert 0 < page[0].created_at <= page[0].updated_at
    rest = await store.list_documents("notes-", page[-1].name, 2)
    assert [d.name for d in rest] == ["notes-c"]
    assert [d.name for d in await store.list_documents("", None, 10)] == [
        "notes-a", "notes-b", "notes-c", "other"]
    assert await store.list_documents("nothing", None, 10) == []
    # A compaction counts the document again: the snapshot replaces the rows it covers.
    await store.write([ReplaceSnapshot("notes-a", 2, b"s" * 6)])
    assert (await store.list_documents("notes-a", None, 1))[0].bytes == 6


async def test_deleting_a_document_ends_its_incarnation(store):
    await store.write([AppendUpdate("d", 1, b"one"), AppendUpdate("d", 2, b"two")])
    await store.write([ReplaceSnapshot("d", 1, b"snap")])
    await store.write([DeleteDocument("d", 1, retired=b"sv-1")])
    loaded = await store.load_document("d")
    assert (loaded.snapshot, loaded.updates, loaded.epoch, loaded.retired) == (
        None, [], 2, b"sv-1")
    assert await store.list_documents("", None, 10) == []
    # A write of the ended incarnation never lands, alone or beside others.
    with pytest.raises(DocumentReplaced) as refused:
        await store.write([AppendUpdate("e", 1, b"e"), AppendUpdate("d", 3, b"late")])
    assert (refused.value.key, refused.value.token, refused.value.current) == ("d", 1, 2)
    with pytest.raises(DocumentReplaced):
        await store.write([ReplaceSnapshot("d", 2, b"old snapshot")])
    with pytest.raises(DocumentReplaced):
        await store.write([DeleteDocument("d", 1, retired=b"sv-1")])
    assert (await store.load_document("e")).updates == []
    # The next incarnation starts at seq 1 and is listed again.
    await store.write([AppendUpdate("d", 1, b"new", epoch=2)])
    loaded = await store.load_document("d")
    assert (loaded.updates, loaded.epoch, loaded.retired) == ([(1, b"new")], 2, b"sv-1")
    assert [(d.name, d.bytes, d.epoch) for d in await store.list_documents("", None, 10)] == [
        ("d", 3, 2)]


async def test_a_document_replaced_with_content(store):
    await store.write([AppendUpdate("r", 1, b"old")])
    # Its own earlier rows in the same batch are ended with it.
    await store.write([AppendUpdate("r", 2, b"older"),
                       DeleteDocument("r", 1, retired=b"sv", content=b"imported")])
    loaded = await store.load_document("r")
    assert (loaded.updates, loaded.epoch) == ([(1, b"imported")], 2)
    assert [(d.name, d.bytes) for d in await store.list_documents("r", None, 1)] == [
        ("r", len(b"imported"))]
    with pytest.raises(DocumentReplaced):  # a write after its epoch's end, in one batch
        await store.write([DeleteDocument("r", 2, retired=b"sv2"),
                           AppendUpdate("r", 2, b"x", epoch=2)])


async def test_versions_are_kept_listed_and_go_with_their_document(store):
    def version(doc: str, id: int, kind: str = "named", data: bytes = b"state") -> PutVersion:
        return PutVersion(VersionInfo(doc, id, kind, f"v{id}" if kind == "named" else None,
                                      "ann", 100.0 + id, 1, len(data)), data)

    await store.write([AppendUpdate("v", 1, b"u"), version("v", 1), version("v", 2, "auto"),
                       version("other", 1)])
    await store.write([version("v", 3, data=b"third"), DeleteVersion("v", 2)])
    listed = await store.list_versions("v")
    assert [(v.id, v.kind, v.name, v.author, v.bytes) for v in listed] == [
        (1, "named", "v1", "ann", 5), (3, "named", "v3", "ann", 5)]
    assert await store.load_version("v", 3) == b"third"
    assert await store.load_version("v", 2) is None
    # A replaced document keeps its versions; a deleted one loses them.
    await store.write([DeleteDocument("v", 1, retired=b"sv", content=b"new")])
    assert len(await store.list_versions("v")) == 2
    await store.write([DeleteDocument("v", 2, retired=b"sv")])
    assert await store.list_versions("v") == []
    assert [v.id for v in await store.list_versions("other")] == [1]


async def test_sqlite_wal_is_checkpointed(tmp_path):
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path}/wal.db"))
    await store.open()
    for seq in range(1, 2501):
        await store.write([AppendUpdate("a", seq, b"x" * 100)])
    # Each commit appends three pages (the log's table and key index, the document's
    # catalog row) to the WAL: 2500 commits without checkpoints make it about 30 MiB.
    # Checkpointed every 1000 commits, SQLite reuses it from the start and it stays
    # near 1000 commits' worth.
    assert (tmp_path / "wal.db-wal").stat().st_size < 2500 * 3 * 4120 * 0.6
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


async def test_timer_puts_and_deletes_apply_in_submission_order(store):
    first = TimerRecord("c", "a", "t", 100.0, "tick", b"\x90")
    second = TimerRecord("c", "a", "t", 200.0, "tock", b"\x90", attempts=2)
    await store.write([PutTimer(first), DeleteTimer("c", "a", "t")])
    assert await store.load_timers("c", "a") == []
    await store.write([PutTimer(first), DeleteTimer("c", "a", "t"), PutTimer(second)])
    assert await store.load_timers("c", "a") == [second]
    await store.write([DeleteTimer("c", "a", "t"), PutTimer(first), PutTimer(second),
                       DeleteTimer("c", "a", "gone")])
    assert await store.load_timers("c", "a") == [second]


async def test_queue_message_keeps_its_enqueue_time(store):
    """A put of an existing message (a retry, a dead letter) changes everything but
    when it was enqueued, within one batch and across batches; a delete ends it."""
    def message(attempts: int, enqueued_at: float) -> QueueRecord:
        return QueueRecord("c", "a", "jobs", 1, b"\x01", attempts=attempts,
                           enqueued_at=enqueued_at)

    await store.write([PutQueueMessage(message(0, 1.0)), PutQueueMessage(message(1, 5.0))])
    assert await store.load_queues("c", "a") == [message(1, 1.0)]
    await store.write([PutQueueMessage(message(2, 9.0))])
    assert await store.load_queues("c", "a") == [message(2, 1.0)]
    await store.write([DeleteQueueMessage("c", "a", "jobs", 1), PutQueueMessage(message(0, 7.0)),
                       PutQueueMessage(message(3, 8.0))])
    assert await store.load_queues("c", "a") == [message(3, 7.0)]


async def test_workflow_keeps_its_name_args_and_start(store):
    start = WorkflowRecord("c", "a", "w", "onboard", b"\x91\x01", "running", b"\x80",
                           created_at=1.0, updated_at=1.0)
    step = WorkflowRecord("c", "a", "w", "renamed", b"\x90", "sleeping", b"\x81\xa1s\x01",
                          created_at=4.0, updated_at=2.0)
    done = WorkflowRecord("c", "a", "w", "renamed", b"\x90", "done", b"\x81\xa1s\x01",
                          result=b"\x02", created_at=5.0, updated_at=3.0)
    await store.write([PutWorkflow(start), PutWorkflow(step)])
    assert await store.load_workflows("c", "a") == [
        WorkflowRecord("c", "a", "w", "onboard", b"\x91\x01", "sleeping", b"\x81\xa1s\x01",
                       created_at=1.0, updated_at=2.0)]
    await store.write([PutWorkflow(done)])
    assert await store.load_workflows("c", "a") == [
        WorkflowRecord("c", "a", "w", "onboard", b"\x91\x01", "done", b"\x81\xa1s\x01",
                       result=b"\x02", created_at=1.0, updated_at=3.0)]


async def test_mixed_batch_commits_as_one(store):
    """Every kind of op in one large batch; then a batch that fails on its last op
    leaves none of its other ops behind."""
    ops = []
    for i in range(300):
        ops += [AppendUpdate(f"d{i % 7}", i, b"u"), PutActorState("c", f"k{i % 50}", b"%d" % i),
                PutTimer(TimerRecord("c", f"k{i}", "t", float(i), "tick", b"\x90")),
                PutQueueMessage(QueueRecord("c", "q", "jobs", i, b"\x01", enqueued_at=1.0)),
                PutRoomMessage(_message(i + 1))]
    ops += [ReplaceSnapshot("d0", 100, b"s"), DeleteTimer("c", "k0", "t"),
            PutWorkflow(WorkflowRecord("c", "a", "w", "n", b"\x90", "running", b"\x80"))]
    await store.write(ops)
    assert (await store.load_document("d0")).snapshot_seq == 100
    assert [seq for seq, _ in (await store.load_document("d1")).updates] == list(range(1, 300, 7))
    assert await store.load_actor_state("c", "k49") == b"299"
    assert await store.next_timer_due() == 1.0
    assert len(await store.load_queues("c", "q")) == 300
    assert await store.room_last_seq("r") == 300
    assert len(await store.load_workflows("c", "a")) == 1

    doomed = [PutActorState("c", "new", b"x"), PutTimer(TimerRecord("c", "n", "t", 0.5, "m", b"")),
              DeleteQueueMessage("c", "q", "jobs", 0), PutRoomMessage(_message(301)),
              PutActorState("c", "\udfff", b"text no store can hold")]
    with pytest.raises(Exception):  # noqa: B017 - each back end raises its own error type
        await store.write(doomed)
    assert await store.load_actor_state("c", "new") is None
    assert await store.next_timer_due() == 1.0
    assert len(await store.load_queues("c", "q")) == 300
    assert await store.room_last_seq("r") == 300


async def test_load_during_compaction_sees_snapshot_and_the_rows_after_it(store):
    """Loads racing appends and snapshot replacements never see a gap or an overlap:
    the log rows start right after the snapshot's seq."""
    stop = asyncio.Event()
    loads = 0

    async def writer() -> None:
        for seq in range(1, 401):
            ops = [AppendUpdate("a", seq, b"u%d" % seq)]
            if seq % 10 == 0:
                ops.append(ReplaceSnapshot("a", seq - 5, b"s%d" % (seq - 5)))
            await store.write(ops)
            await asyncio.sleep(0)  # let the readers in: inline SQLite commits never yield
        stop.set()

    async def reader() -> None:
        nonlocal loads
        while not stop.is_set():
            doc = await store.load_document("a")
            seqs = [seq for seq, _ in doc.updates]
            assert seqs == list(range(doc.snapshot_seq + 1, doc.snapshot_seq + 1 + len(seqs)))
            if doc.snapshot is not None:
                assert doc.snapshot == b"s%d" % doc.snapshot_seq
            loads += 1
            await asyncio.sleep(0)  # SQLite loads small documents on the loop, without yielding

    await asyncio.gather(writer(), reader(), reader())
    assert loads > 0
    final = await store.load_document("a")
    assert final.snapshot_seq == 395 and final.last_seq == 400


def test_net_effect_matches_applying_in_order():
    """The Postgres store's reduction of a batch, checked against a replay in order."""
    def q(seq: int, attempts: int, at: float) -> QueueRecord:
        return QueueRecord("c", "a", "jobs", seq, b"", attempts=attempts, enqueued_at=at)

    changes = [(1, q(1, 0, 1.0)), (2, q(2, 0, 2.0)), (1, q(1, 1, 9.0)), (2, None),
               (3, None), (2, q(2, 4, 3.0)), (4, q(4, 0, 4.0)), (4, None)]
    deletes, upserts = net_effect(changes, keep=("enqueued_at",))
    assert deletes == [2, 3, 4]
    assert upserts == [q(1, 1, 1.0), q(2, 4, 3.0)]
    assert net_effect([("k", "a"), ("k", "b")]) == ([], ["b"])


# -- selection by URL ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["postgres://u:p@db.example.com:5432/app?sslmode=require",
                                 "postgresql://u@localhost/app"])
def test_postgres_urls_select_postgres(url):
    assert isinstance(open_store(Settings.from_env({"DATABASE_URL": url})), PostgresStore)


def test_sqlite_url_selects_sqlite(tmp_path):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert isinstance(open_store(settings), SQLiteStore)


# -- Postgres specifics ----------------------------------------------------------------


async def _pg_store(url: str) -> PostgresStore:
    store = PostgresStore(url)
    await store.open()
    return store


async def test_postgres_concurrent_migrations_take_turns(pg_url):
    """Stores opening at once on an empty schema (as several processes starting
    together do) each migrate under the advisory lock: each version once."""
    stores = [PostgresStore(pg_url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        conn = await asyncpg.connect(pg_url)
        versions = [r[0] for r in await conn.fetch("SELECT version FROM collab_schema "
                                                     "ORDER BY version")]
        assert versions == [version for version, _ in MIGRATIONS]
        # BLOB columns became BYTEA, so bytes round-trip as bytes.
        kinds = dict(await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'doc_updates'"))
        assert kinds["data"] == "bytea"
        await conn.close()
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_postgres_url_schemes_and_sslmode(pg_url):
    """`postgres://` (Heroku's) works like `postgresql://`, and sslmode in the URL is
    honoured: `disable` connects in plain text; `require` gets TLS or refuses."""
    plain = pg_url.replace("postgresql://", "postgres://", 1) + "&sslmode=disable"
    store = await _pg_store(plain)
    try:
        assert await store.pool.fetchval(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is False
        server_has_tls = await store.pool.fetchval("SHOW ssl") == "on"
    finally:
        await store.close()
    secure = PostgresStore(pg_url + "&sslmode=require")
    if server_has_tls:
        await secure.open()
        try:
            assert await secure.pool.fetchval(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        finally:
            await secure.close()
    else:
        with pytest.raises(ConnectionError, match="cannot connect to Postgres at"):
            await secure.open()


async def test_postgres_unreachable_is_a_clear_error():
    store = PostgresStore("postgres://nobody:secret@127.0.0.1:1/nothing")
    with pytest.raises(ConnectionError) as info:
        await store.open()
    assert "cannot connect to Postgres at 127.0.0.1:1/nothing" in str(info.value)
    assert "secret" not in str(info.value)


async def test_fencing_refuses_a_former_owner_and_writes_nothing_of_its_batch(store):
    await store.write([Fence("counter", "k", 1), PutActorState("counter", "k", b"one")])
    await store.write([Fence("counter", "k", 2), PutActorState("counter", "k", b"two")])
    await store.write([Fence("counter", "k", 2), PutActorState("counter", "k", b"two again")])
    with pytest.raises(StaleOwner) as raised:
        await store.write([Fence("counter", "k", 1), PutActorState("counter", "k", b"stale"),
                           AppendUpdate("doc", 1, b"x")])
    assert (raised.value.kind, raised.value.key, raised.value.token,
            raised.value.current) == ("counter", "k", 1, 2)
    assert await store.load_actor_state("counter", "k") == b"two again"
    assert (await store.load_document("doc")).updates == []
    # Fences are per actor: another actor's token 1 is fine.
    await store.write([Fence("counter", "other", 1), PutActorState("counter", "other", b"o")])
    # A new owner's token must be above the last one the store saw.
    assert await store.fence_token("counter", "k") == 2
    assert await store.fence_token("counter", "other") == 1
    assert await store.fence_token("counter", "never") == 0


async def test_group_commit_fails_only_the_stale_submission(store):
    from collab.storage.commit import GroupCommitter
    await store.write([Fence("doc", "d", 5)])
    committer = GroupCommitter(store)
    committer.start()
    stale = committer.submit([Fence("doc", "d", 4), AppendUpdate("d", 1, b"old owner")])
    fresh = committer.submit([Fence("doc", "d", 5), AppendUpdate("d", 1, b"owner")])
    other = committer.submit([PutActorState("counter", "c", b"unfenced")])
    results = await asyncio.gather(stale, fresh, other, return_exceptions=True)
    assert isinstance(results[0], StaleOwner) and results[1:] == [None, None]
    assert (await store.load_document("d")).updates == [(1, b"owner")]
    assert committer.stats.stale == 1
    await committer.close()


async def test_postgres_retries_a_batch_whose_connection_died_before_commit(pg_url):
    """What a Postgres restart does to a write in flight: its connection dies before
    COMMIT. The batch is retried on a fresh connection; nothing is lost or doubled."""
    store = PostgresStore(pg_url)
    await store.open()
    admin = await asyncpg.connect(pg_url)
    try:
        await store.write([PutActorState("c", "k", b"before")])
        blocker = admin.transaction()
        await blocker.start()
        await admin.execute("SELECT * FROM actor_state WHERE kind = 'c' AND key = 'k' "
                            "FOR UPDATE")  # the next write of this row waits for us
        write = asyncio.ensure_future(store.write([PutActorState("c", "k", b"after"),
                                                   AppendUpdate("d", 1, b"one")]))

        async def waiting_pid() -> int | None:
            return await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()")

        async def blocked() -> bool:
            return await waiting_pid() is not None
        await until(blocked)
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", await waiting_pid())
        await blocker.rollback()
        await asyncio.wait_for(write, 20)
        assert await store.load_actor_state("c", "k") == b"after"
        assert (await store.load_document("d")).updates == [(1, b"one")]
    finally:
        await admin.close()
        await store.close()


async def test_postgres_out_of_reach_then_back(pg_url):
    """Postgres unreachable (a restart, a network cut): a write is retried with backoff,
    then fails with a clear StoreUnavailable, and nothing acknowledged is lost; once
    Postgres answers again, writes go through on fresh connections."""
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    port = await proxy.start()
    store = PostgresStore(urlunsplit(parts._replace(
        netloc=f"{parts.username or ''}@127.0.0.1:{port}".lstrip("@"))))
    await store.open()
    try:
        await store.write([PutActorState("c", "k", b"acknowledged")])
        proxy.cut()
        with pytest.raises(StoreUnavailable) as down:
            await store.write([PutActorState("c", "k", b"never acknowledged")])
        assert f"127.0.0.1:{port}" in str(down.value) and "unavailable" in str(down.value)
        await proxy.start()
        await store.write([PutActorState("c", "k", b"after")])
        assert await store.load_actor_state("c", "k") == b"after"
    finally:
        proxy.cut()
        await store.close()


async def test_a_full_disk_refuses_writes_clearly_and_recovers(tmp_path):
    """SQLite out of space (here: a page cap, as a full disk looks to SQLite): the batch
    is refused whole with a clear StoreUnavailable, nothing acknowledged is lost, and
    writes work again once there is room."""
    store = SQLiteStore(f"sqlite:///{tmp_path}/full.db")
    await store.open()
    try:
        await store.write([PutActorState("c", "k", b"acknowledged")])
        pages = await store.in_writer(
            lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await store.in_writer(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
        with pytest.raises(StoreUnavailable) as full:
            await store.write([PutActorState("c", "k", b"x" * 1_000_000),
                               AppendUpdate("d", 1, b"y" * 1_000_000)])
        assert "full" in str(full.value) and "full.db" in str(full.value)
        assert await store.load_actor_state("c", "k") == b"acknowledged"
        assert (await store.load_document("d")).updates == []
        await store.in_writer(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))
        await store.write([PutActorState("c", "k", b"after")])
        assert await store.load_actor_state("c", "k") == b"after"
    finally:
        await store.close()


# -- administrators' rules about users (gateway/user_rules.py) ---------------------


async def test_store_keeps_the_latest_revocation_per_user(store):
    assert await store.load_revocations() == {}
    await store.write([RevokeUser("eve", 100.5), RevokeUser("mallory", 50.0)])
    # An older time changes nothing, in a later batch or in the same one.
    await store.write([RevokeUser("eve", 90.0)])
    await store.write([RevokeUser("mallory", 70.25), RevokeUser("mallory", 60.0)])
    assert await store.load_revocations() == {"eve": 100.5, "mallory": 70.25}


async def test_store_revocation_survives_reopening(store):
    await store.write([RevokeUser("eve", 1234.5)])
    await store.close()
    await store.open()
    assert await store.load_revocations() == {"eve": 1234.5}


async def test_store_keeps_the_latest_limits_per_user(store):
    assert await store.load_user_limits() == {}
    await store.write([LimitUser("eve", '{"docs": {"*": "r"}}', 10.0),
                       LimitUser("eve", '{"docs": {"*": "none"}}', 5.0)])  # older: ignored
    await store.write([LimitUser("bob", "{}", 3.0)])
    await store.write([LimitUser("bob", '{"rooms": {"x": "r"}}', 2.0)])  # older: ignored
    await store.close()
    await store.open()
    assert await store.load_user_limits() == {"eve": ('{"docs": {"*": "r"}}', 10.0),
                                              "bob": ("{}", 3.0)}


async def test_two_processes_opening_one_new_sqlite_file_both_start(tmp_path):
    """Workers of `collab serve --workers N` open (and migrate) one new file at once:
    the second waits for the first's migration instead of failing 'locked'."""
    for attempt in range(30):
        url = f"sqlite:///{tmp_path}/new-{attempt}.db"
        stores = [SQLiteStore(url), SQLiteStore(url), SQLiteStore(url)]
        await asyncio.gather(*(store.open() for store in stores))
        for store in stores:
            assert await store.migrate() == LATEST_VERSION
            await store.close()


async def test_documents_stored_before_the_catalog_are_listed_after_the_upgrade(tmp_path):
    """Schema version 10 adds the documents catalog and fills it from what is stored."""
    url = f"sqlite:///{tmp_path}/old.db"
    store = SQLiteStore(url)
    await store.open()
    await store.write([AppendUpdate("kept", 1, b"abc"), AppendUpdate("kept", 2, b"de"),
                       AppendUpdate("snap", 1, b"x"), AppendUpdate("snap", 2, b"yz")])
    await store.write([ReplaceSnapshot("snap", 1, b"snapshot")])
    await store.close()
    with sqlite3.connect(tmp_path / "old.db") as conn:  # back to version 9
        conn.execute("DROP TABLE documents")
        conn.execute("DROP TABLE doc_versions")
        conn.execute("DELETE FROM collab_schema WHERE version >= 10")
    store = SQLiteStore(url)
    await store.open()
    listed = {d.name: (d.bytes, d.epoch) for d in await store.list_documents("", None, 10)}
    assert listed == {"kept": (5, 1), "snap": (len(b"snapshot") + 2, 1)}
    assert (await store.load_document("kept")).epoch == 1
    await store.close()


# -- listing actors (collab actors ls, GET /api/admin/actors) ----------------------


async def test_list_actors_counts_what_each_actor_holds(store):
    await store.write([
        PutActorState("counter", "a", b"\x81\xa1n\x01"),
        PutTimer(TimerRecord("counter", "a", "t2", 300.0, "tick", b"\x90")),
        PutTimer(TimerRecord("counter", "a", "t1", 200.0, "tick", b"\x90")),
        PutQueueMessage(QueueRecord("worker", "w", "jobs", 1, b"\x01", enqueued_at=1.0)),
        PutQueueMessage(QueueRecord("worker", "w", "jobs", 2, b"\x02", enqueued_at=1.0)),
        PutQueueMessage(QueueRecord("worker", "w", "alpha", 1, b"\x03", attempts=3,
                                    dead=True, error="boom", enqueued_at=1.0)),
        PutWorkflow(WorkflowRecord("agent", "z", "r1", "research", b"\x90", "sleeping",
                                   b"\x80", created_at=1.0, updated_at=1.0)),
        PutWorkflow(WorkflowRecord("agent", "z", "r2", "research", b"\x90", "done",
                                   b"\x80", result=b"\x01", created_at=2.0, updated_at=2.0)),
        # Documents and chat messages are not application actor rows.
        AppendUpdate("notes", 1, b"u"), PutRoomMessage(_message(1)),
    ])
    listed = await store.list_actors(None, None, 10)
    assert [(a.kind, a.key) for a in listed] == [("agent", "z"), ("counter", "a"),
                                                  ("worker", "w")]
    agent, counter, worker = listed
    assert counter.state_bytes == 4 and counter.state_updated_at > 0
    assert (counter.timers, counter.next_due) == (2, 200.0)
    assert (counter.queued, counter.dead_letters, counter.workflows) == (0, 0, 0)
    assert worker == ActorSummary("worker", "w", None, None, 0, None, 2, 1, 0, 0)
    assert agent == ActorSummary("agent", "z", None, None, 0, None, 0, 0, 2, 1)


async def test_list_actors_pages_through_everything_once_in_order(store):
    # Keys whose order differs between byte order and most collations: uppercase,
    # punctuation, a prefix, a non-ASCII letter. Each page starts after the last.
    keys = ["b", "B", "a-b", "ab", "a", "a/x", "é"]
    ops = []
    for i, key in enumerate(keys):
        ops.append(PutActorState("k", key, b"\xc0"))  # in two tables: listed once
        ops.append(PutTimer(TimerRecord("k", key, "t", float(i), "m", b"\x90")))
    ops += [PutActorState("j", "z", b"\xc0"), PutActorState("l", "a", b"\xc0")]
    await store.write(ops)

    everything = [(a.kind, a.key) for a in await store.list_actors(None, None, 100)]
    walked, after = [], None
    while page := await store.list_actors(None, after, 3):
        assert len(page) <= 3
        walked += [(a.kind, a.key) for a in page]
        after = walked[-1]
    assert walked == everything
    assert sorted(walked) == sorted([("j", "z"), *(("k", key) for key in keys), ("l", "a")])
    assert [kind for kind, _ in walked] == ["j", *["k"] * len(keys), "l"]
    if isinstance(store, SQLiteStore):  # Postgres sorts by the database's collation
        assert [key for _, key in walked[1:-1]] == sorted(keys, key=str.encode)

    k_keys = [key for kind, key in walked if kind == "k"]
    assert [a.key for a in await store.list_actors("k", ("k", k_keys[2]), 3)] == k_keys[3:6]
    assert [a.key for a in await store.list_actors("k", ("j", "zzz"), 2)] == k_keys[:2]
    assert await store.list_actors("nothing", None, 10) == []
    assert await store.list_actors(None, ("l", "a"), 10) == []


async def test_sqlite_loads_small_documents_on_the_loop_and_large_ones_off_it(tmp_path):
    """A document of at most POINT_LOAD_BYTES (or none at all) is read on the loop's
    point-read connection; a larger one on the aiosqlite thread. Both read the same."""
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path}/loads.db"))
    await store.open()
    big = bytes(range(256)) * (POINT_LOAD_BYTES // 256 + 1)
    await store.write([AppendUpdate("small", 1, b"s1"), AppendUpdate("small", 2, b"s2"),
                       AppendUpdate("big", 1, big), AppendUpdate("big", 2, b"b2")])
    await store.write([ReplaceSnapshot("small", 1, b"snap")])
    threaded: list[str] = []
    rows = store._rows

    async def counted(sql, params=()):
        threaded.append(params[0])
        return await rows(sql, params)

    store._rows = counted
    small = await store.load_document("small")
    assert small == StoredDocument(b"snap", 1, [(2, b"s2")])
    assert await store.load_document("never-written") == StoredDocument()
    assert threaded == []
    assert (await store.load_document("big")).updates == [(1, big), (2, b"b2")]
    assert threaded == ["big"]
    await store.close()
