"""The embedded default store: one SQLite file in WAL mode.

One writer connection applies each group-committed batch in one transaction.
With `synchronous` OFF or NORMAL a WAL commit is a write() into the page cache
and no fsync, so it runs right on the event loop: 42 µs of CPU per commit,
measured, against 123 µs when each batch is handed to a thread (aiosqlite or
an executor: the cross-thread wake-ups cost more than SQLite's work). FULL and
EXTRA fsync on every commit, so they run on a dedicated writer thread. Large
reads use an aiosqlite reader connection (WAL lets readers and one writer run
side by side); small indexed point reads (an actor's state, its timers, a chat
message by client id, a document of at most POINT_LOAD_BYTES) run on the loop
on a connection of their own: about 10 µs instead of a 250 µs round trip to
the aiosqlite thread, which matters because an actor waits for them. The
writer's auto-checkpoint is off when commits run inline; a checkpoint runs on
the writer thread every CHECKPOINT_EVERY_COMMITS commits, so no fsync-ing
checkpoint ever runs on the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import aiosqlite

from collab.errors import StoreUnavailable
from collab.storage import catalog
from collab.storage.base import (
    ActorSummary,
    AppendUpdate,
    DeleteDocument,
    DeleteQueueMessage,
    DeleteTimer,
    DeleteVersion,
    DocumentInfo,
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
    Store,
    StoredDocument,
    TimerRecord,
    VersionInfo,
    WorkflowRecord,
    WriteOp,
    incarnation_ops,
)
from collab.storage.listing import list_actors_query
from collab.storage.schema import FENCE_SQL, LIMIT_SQL, MIGRATIONS, REVOKE_SQL

T = TypeVar("T")
#: Milliseconds a connection waits for another process's lock before failing
#: (`collab migrate` while a server runs, a backup tool, a second worker).
BUSY_TIMEOUT_MS = 5000
#: `synchronous` levels whose commits do not fsync, and so run on the event loop.
INLINE_SYNCHRONOUS = ("OFF", "NORMAL")
#: Commits between two background WAL checkpoints when commits run inline (the
#: writer's auto-checkpoint is off then). SQLite's own default is every 1000
#: pages; a commit here is at least one page.
CHECKPOINT_EVERY_COMMITS = 1000
#: Stored bytes up to which a document loads on the event loop (a point read):
#: a new or small document, the common case when clients connect, costs a few
#: tens of µs there. Through the aiosqlite thread it costs a round trip, and a
#: wait for the GIL while the loop is busy: connection setup was 6% slower.
POINT_LOAD_BYTES = 64 * 1024


def sqlite_path(url: str) -> str:
    """`sqlite:///rel/path.db` -> `rel/path.db`; `sqlite:////abs.db` -> `/abs.db`."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///path.db)")
    return url[len(prefix):]


_LOAD_DOCUMENT = """
    SELECT 0, seq, data FROM doc_snapshots WHERE doc = ?
    UNION ALL
    SELECT 1, seq, data FROM doc_updates
     WHERE doc = ? AND seq > COALESCE((SELECT seq FROM doc_snapshots WHERE doc = ?), 0)
    UNION ALL
    SELECT 2, epoch, retired FROM documents WHERE doc = ?
    ORDER BY 1, 2
"""

_ROOM_COLUMNS = ("room, seq, client_id, user_id, body, meta, created_at, edited_at, deleted, "
                 "reactions")


def _room_message(row: tuple) -> RoomMessage:
    return RoomMessage(row[0], row[1], row[2], row[3], row[4],
                       None if row[5] is None else bytes(row[5]), row[6], row[7], bool(row[8]),
                       bytes(row[9]))


class SQLiteStore(Store):
    def __init__(self, url: str, *, synchronous: str = "NORMAL") -> None:
        self.path = sqlite_path(url)
        self.synchronous = synchronous
        self._writer: sqlite3.Connection | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._reader: aiosqlite.Connection | None = None
        self._point_reader: sqlite3.Connection | None = None
        self.inline_commits = synchronous in INLINE_SYNCHRONOUS
        self._commits = 0

    def _pragmas(self) -> list[str]:
        return [f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", "PRAGMA journal_mode = WAL",
                f"PRAGMA synchronous = {self.synchronous}"]

    def _writer_pragmas(self) -> list[str]:
        if not self.inline_commits:
            return self._pragmas()
        # Inline commits never wait for a lock on the loop (a busy database
        # sends the batch to the writer thread instead) and never checkpoint.
        return [*self._pragmas(), "PRAGMA busy_timeout = 0", "PRAGMA wal_autocheckpoint = 0"]

    async def in_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(writer connection)` on the writer thread; the only way to touch it."""
        assert self._writer_thread is not None, "open() first"
        return await asyncio.get_running_loop().run_in_executor(
            self._writer_thread, fn, self._writer)

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

        def connect(_: None) -> sqlite3.Connection:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Switching a new file to WAL takes its lock without SQLite's busy handler:
            # workers opening one new file at once retry here, as the handler would.
            deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    for pragma in self._writer_pragmas():
                        conn.execute(pragma)
                    return conn
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() > deadline:
                        conn.close()
                        raise
                    time.sleep(0.01)

        self._writer = await self.in_writer(connect)
        await self.migrate()
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in self._pragmas():
            await self._reader.execute(pragma)
        # Never waits for a lock on the loop: a busy database sends the read to `_rows`.
        self._point_reader = sqlite3.connect(self.path, isolation_level=None)
        for pragma in [*self._pragmas(), "PRAGMA busy_timeout = 0"]:
            self._point_reader.execute(pragma)

    async def close(self) -> None:
        if self._point_reader is not None:
            self._point_reader.close()
            self._point_reader = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._writer is not None:
            await self.in_writer(lambda conn: conn.close())
            self._writer = None
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None

    async def migrate(self) -> int:
        # Patiently: two processes opening one new file at once both migrate, and
        # the second must wait for the first's transaction, not fail.
        return await self.in_writer(lambda conn: _patiently(conn, _migrate))

    async def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Every row of one read on the reader connection."""
        assert self._reader is not None, "open() first"
        async with self._reader.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _point_rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """A read of a few rows by index, on the loop (see the module docstring)."""
        assert self._point_reader is not None, "open() first"
        try:
            return self._point_reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            return await self._rows(sql, params)

    async def load_document(self, doc: str) -> StoredDocument:
        # One statement is one consistent read: the snapshot and the log rows
        # after it come from the same moment, with no transaction to interleave.
        params = (doc, doc, doc, doc)
        size = await self._point_rows(catalog.SIZE_SQL, (doc,))
        if not size or size[0][0] <= POINT_LOAD_BYTES:
            return catalog.stored_document(await self._point_rows(_LOAD_DOCUMENT, params))
        return catalog.stored_document(await self._rows(_LOAD_DOCUMENT, params))

    async def list_documents(self, prefix: str, after: str | None, limit: int
                             ) -> list[DocumentInfo]:
        rows = await self._rows(catalog.LIST_SQL, catalog.list_params(prefix, after, limit))
        return [DocumentInfo(*row) for row in rows]

    async def list_versions(self, doc: str) -> list[VersionInfo]:
        return [VersionInfo(*row) for row in await self._rows(catalog.LIST_VERSIONS_SQL, (doc,))]

    async def load_version(self, doc: str, version: int) -> bytes | None:
        rows = await self._rows(catalog.LOAD_VERSION_SQL, (doc, version))
        return bytes(rows[0][0]) if rows else None

    async def load_actor_state(self, kind: str, key: str) -> bytes | None:
        rows = await self._point_rows("SELECT state FROM actor_state WHERE kind = ? AND key = ?",
                                (kind, key))
        return bytes(rows[0][0]) if rows else None

    async def load_timers(self, kind: str, key: str) -> list[TimerRecord]:
        rows = await self._point_rows(
            "SELECT kind, key, id, due, method, args, cron, tz, attempts FROM actor_timers "
            "WHERE kind = ? AND key = ? ORDER BY due", (kind, key))
        return [TimerRecord(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), r[6], r[7], r[8])
                for r in rows]

    async def next_timer_due(self) -> float | None:
        return (await self._rows("SELECT MIN(due) FROM actor_timers"))[0][0]

    async def actors_with_timers_due(self, before: float, limit: int) -> list[tuple[str, str]]:
        rows = await self._rows(
            "SELECT kind, key, MIN(due) AS first FROM actor_timers WHERE due <= ? "
            "GROUP BY kind, key ORDER BY first LIMIT ?", (before, limit))
        return [(row[0], row[1]) for row in rows]

    async def load_queues(self, kind: str, key: str) -> list[QueueRecord]:
        rows = await self._rows(
            "SELECT kind, key, queue, seq, body, attempts, dead, error, enqueued_at "
            "FROM actor_queue WHERE kind = ? AND key = ? ORDER BY queue, seq", (kind, key))
        return [QueueRecord(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], bool(r[6]), r[7], r[8])
                for r in rows]

    async def load_workflows(self, kind: str, key: str) -> list[WorkflowRecord]:
        rows = await self._rows(
            "SELECT kind, key, id, name, args, status, steps, result, error, created_at, "
            "updated_at FROM actor_workflows WHERE kind = ? AND key = ? ORDER BY created_at",
            (kind, key))
        return [WorkflowRecord(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], bytes(r[6]),
                               None if r[7] is None else bytes(r[7]), r[8], r[9], r[10])
                for r in rows]

    async def load_room_messages(self, room: str, *, before: int | None = None,
                                 after: int | None = None, limit: int) -> list[RoomMessage]:
        where, params = "room = ?", [room]
        if before is not None:
            where, params = where + " AND seq < ?", [*params, before]
        if after is not None:
            where, params = where + " AND seq > ?", [*params, after]
        # Only `after`: the oldest rows after it; otherwise the newest, reversed below.
        oldest_first = after is not None and before is None
        rows = await self._rows(
            f"SELECT {_ROOM_COLUMNS} FROM room_messages WHERE {where} "
            f"ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT ?", (*params, limit))
        messages = [_room_message(row) for row in rows]
        return messages if oldest_first else messages[::-1]

    async def find_room_message(self, room: str, client_id: str) -> RoomMessage | None:
        rows = await self._point_rows(
            f"SELECT {_ROOM_COLUMNS} FROM room_messages WHERE room = ? AND client_id = ?",
            (room, client_id))
        return _room_message(rows[0]) if rows else None

    async def fence_token(self, kind: str, key: str) -> int:
        rows = await self._point_rows(
            "SELECT token FROM actor_fences WHERE kind = ? AND key = ?", (kind, key))
        return rows[0][0] if rows else 0

    async def load_revocations(self) -> dict[str, float]:
        rows = await self._rows("SELECT user_id, revoked_at FROM revocations")
        return {user: revoked_at for user, revoked_at in rows}

    async def load_user_limits(self) -> dict[str, tuple[str, float]]:
        rows = await self._rows("SELECT user_id, limits, set_at FROM user_limits")
        return {user: (limits, set_at) for user, limits, set_at in rows}

    async def room_last_seq(self, room: str) -> int:
        rows = await self._point_rows("SELECT MAX(seq) FROM room_messages WHERE room = ?",
                                      (room,))
        return rows[0][0] or 0

    async def count_room_messages(self, room: str, *, after: int,
                                  exclude_user: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM room_messages WHERE room = ? AND seq > ? AND deleted = 0"
        params: tuple = (room, after)
        if exclude_user is not None:
            sql, params = sql + " AND user_id <> ?", (*params, exclude_user)
        return (await self._rows(sql, params))[0][0]

    async def write(self, ops: Sequence[WriteOp]) -> None:
        try:
            await self._write(ops)
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", -1) & 0xFF) in _CANNOT_WRITE or _is_busy(exc):
                # Rolled back whole: refuse with a clear error; the next batch tries again.
                raise StoreUnavailable(f"SQLite cannot write to {self.path}: {exc}") from None
            raise

    async def _write(self, ops: Sequence[WriteOp]) -> None:
        if not self.inline_commits:
            await self.in_writer(lambda conn: _write(conn, ops))
            return
        assert self._writer is not None, "open() first"
        try:
            _write(self._writer, ops)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            # Another process holds the lock: wait for it off the loop.
            await self.in_writer(lambda conn: _write_patiently(conn, ops))
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY_COMMITS == 0:
            # On the writer thread, between two batches: nothing is appended while
            # it runs, so it backfills the whole WAL and the next commit restarts it.
            # Commits wait meanwhile (and group up); the event loop does not.
            await self.in_writer(_checkpoint)

    async def ping(self) -> None:
        await self._rows("SELECT 1")

    async def list_actors(self, kind: str | None, after: tuple[str, str] | None,
                          limit: int) -> list[ActorSummary]:
        sql, args = list_actors_query(kind, after, limit, postgres=False)
        return [ActorSummary(*row) for row in await self._rows(sql, tuple(args))]


def _transaction(conn: sqlite3.Connection, body: Callable[[], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _migrate(conn: sqlite3.Connection) -> int:
    def body() -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS collab_schema (version INTEGER NOT NULL)")
        current = conn.execute("SELECT MAX(version) FROM collab_schema").fetchone()[0] or 0
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO collab_schema (version) VALUES (?)", (version,))
                current = version
        return current

    return _transaction(conn, body)


def _write(conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> None:
    fences = {(op.kind, op.key, op.token) for op in ops if isinstance(op, Fence)}
    appends = [(op.doc, op.seq, op.data) for op in ops if isinstance(op, AppendUpdate)]
    snapshots = [op for op in ops if isinstance(op, ReplaceSnapshot)]
    states = [op for op in ops if isinstance(op, PutActorState)]
    timer_ops = [op for op in ops if isinstance(op, PutTimer | DeleteTimer)]
    queue_ops = [op for op in ops if isinstance(op, PutQueueMessage | DeleteQueueMessage)]
    workflows = [op.workflow for op in ops if isinstance(op, PutWorkflow)]
    room_messages = [op.message for op in ops if isinstance(op, PutRoomMessage)]
    revocations = [(op.user, op.at) for op in ops if isinstance(op, RevokeUser)]
    user_limits = [(op.user, op.limits, op.at) for op in ops if isinstance(op, LimitUser)]

    epochs = incarnation_ops(ops)
    deletions = [op for op in ops if isinstance(op, DeleteDocument)]

    def body() -> None:
        for kind, key, token in fences:  # first: a stale owner writes nothing
            conn.execute(FENCE_SQL, (kind, key, token))
            current = conn.execute("SELECT token FROM actor_fences WHERE kind = ? AND key = ?",
                                   (kind, key)).fetchone()[0]
            if current > token:
                raise StaleOwner(kind, key, token, current)
        for doc, (epoch, _) in epochs.items():  # then: nothing for a deleted incarnation
            row = conn.execute(catalog.EPOCH_SQL, (doc,)).fetchone()
            stored = row[0] if row else 1
            if stored != epoch:
                raise DocumentReplaced(doc, epoch, stored)
        now = time.time()
        if appends:
            # A row written again after a commit whose failure was reported late
            # (runtime/writes.py) is the same row: keep the one stored.
            conn.executemany("INSERT INTO doc_updates (doc, seq, data) VALUES (?, ?, ?) "
                             "ON CONFLICT (doc, seq) DO NOTHING", appends)
            conn.executemany(catalog.APPEND_SQL, catalog.appended_bytes(ops, epochs, now))
        for snap in snapshots:
            conn.execute(
                "INSERT INTO doc_snapshots (doc, seq, data, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, "
                "updated_at = excluded.updated_at WHERE excluded.seq >= doc_snapshots.seq",
                (snap.doc, snap.seq, snap.data, now))
            conn.execute("DELETE FROM doc_updates WHERE doc = ? AND seq <= ?", (snap.doc, snap.seq))
            conn.execute(catalog.RESIZE_SQL, (snap.doc, snap.doc, snap.doc))
        for op in ops:  # in submission order: a version made then pruned goes
            if isinstance(op, PutVersion):
                conn.execute(catalog.PUT_VERSION_SQL, catalog.version_row(op))
            elif isinstance(op, DeleteVersion):
                conn.execute(catalog.DELETE_VERSION_SQL, (op.doc, op.id))
        for op in deletions:  # last: they end what the ops before them wrote
            conn.execute("DELETE FROM doc_updates WHERE doc = ?", (op.doc,))
            conn.execute("DELETE FROM doc_snapshots WHERE doc = ?", (op.doc,))
            if op.content is not None:
                conn.execute("INSERT INTO doc_updates (doc, seq, data) VALUES (?, 1, ?)",
                             (op.doc, op.content))
            else:
                conn.execute(catalog.DELETE_VERSIONS_SQL, (op.doc,))
            conn.execute(catalog.DELETE_SQL, catalog.deletion_row(op, now))
        if states:
            # In submission order, so the last state written for an actor wins.
            conn.executemany(
                "INSERT INTO actor_state (kind, key, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                [(op.kind, op.key, op.data, now) for op in states])
        for op in timer_ops:  # in submission order: a put then a delete of one id deletes it
            if isinstance(op, PutTimer):
                t = op.timer
                conn.execute(
                    "INSERT INTO actor_timers (kind, key, id, due, method, args, cron, tz, "
                    "attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key, id) "
                    "DO UPDATE SET due = excluded.due, method = excluded.method, "
                    "args = excluded.args, cron = excluded.cron, tz = excluded.tz, "
                    "attempts = excluded.attempts",
                    (t.kind, t.key, t.id, t.due, t.method, t.args, t.cron, t.tz, t.attempts))
            else:
                conn.execute("DELETE FROM actor_timers WHERE kind = ? AND key = ? AND id = ?",
                             (op.kind, op.key, op.id))
        for op in queue_ops:
            if isinstance(op, PutQueueMessage):
                m = op.message
                conn.execute(
                    "INSERT INTO actor_queue (kind, key, queue, seq, body, attempts, dead, "
                    "error, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (kind, key, queue, seq) DO UPDATE SET body = excluded.body, "
                    "attempts = excluded.attempts, dead = excluded.dead, error = excluded.error",
                    (m.kind, m.key, m.queue, m.seq, m.body, m.attempts, int(m.dead), m.error,
                     m.enqueued_at))
            else:
                conn.execute("DELETE FROM actor_queue WHERE kind = ? AND key = ? AND queue = ? "
                             "AND seq = ?", (op.kind, op.key, op.queue, op.seq))
        for w in workflows:
            conn.execute(
                "INSERT INTO actor_workflows (kind, key, id, name, args, status, steps, result, "
                "error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, key, id) DO UPDATE SET status = excluded.status, "
                "steps = excluded.steps, result = excluded.result, error = excluded.error, "
                "updated_at = excluded.updated_at",
                (w.kind, w.key, w.id, w.name, w.args, w.status, w.steps, w.result, w.error,
                 w.created_at, w.updated_at))
        for m in room_messages:  # in submission order: the last version of a row wins
            conn.execute(
                f"INSERT INTO room_messages ({_ROOM_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (room, seq) DO UPDATE SET client_id = excluded.client_id, "
                "user_id = excluded.user_id, body = excluded.body, meta = excluded.meta, "
                "created_at = excluded.created_at, edited_at = excluded.edited_at, "
                "deleted = excluded.deleted, reactions = excluded.reactions",
                (m.room, m.seq, m.client_id, m.user, m.body, m.meta, m.created_at, m.edited_at,
                 int(m.deleted), m.reactions))
        if revocations:  # the upsert keeps the latest time, in any order
            conn.executemany(REVOKE_SQL, revocations)
        if user_limits:  # the same: the latest change wins
            conn.executemany(LIMIT_SQL, user_limits)

    _transaction(conn, body)


#: Errors after which nothing was written and the store may work again later: a
#: full disk (or a size cap), an I/O error, a file made read-only.
_CANNOT_WRITE = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
        or "locked" in str(exc)


def _write_patiently(conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> None:
    """`_write` with the busy timeout, for the writer thread when the lock is taken."""
    _patiently(conn, lambda c: _write(c, ops))


def _patiently(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(conn)` waiting up to BUSY_TIMEOUT_MS for another process's lock (inline
    commits run with no wait at all); for the writer thread."""
    before = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        return fn(conn)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(before)}")


def _checkpoint(conn: sqlite3.Connection) -> None:
    # The pragma returns a row; an unread cursor would keep a statement open and
    # make the next COMMIT fail with "SQL statements in progress".
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
