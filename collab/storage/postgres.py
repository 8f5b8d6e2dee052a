"""The shared store for several processes: PostgreSQL through an asyncpg pool.

Same semantics as the SQLite store, row for row. A group-committed batch is one
transaction of at most one statement per table and kind of change: each op kind
is reduced to its net effect per row (the last put of a key wins, a delete then
a put is a delete then an insert) and sent as arrays through `unnest`, which is
about 1.6x the rows/s of a pipelined `executemany` of single-row upserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from collab.config import DEFAULT_DATABASE_POOL_SIZE
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
from collab.storage.schema import FENCE_SQL, LIMIT_SQL, MIGRATIONS, REVOKE_SQL, for_postgres

log = logging.getLogger(__name__)

#: Tries of a batch whose connection broke before it committed (a Postgres restart
#: leaves every pooled connection dead), with jittered backoff from RETRY_BASE s.
WRITE_ATTEMPTS = 6
RETRY_BASE = 0.1

K = TypeVar("K")
R = TypeVar("R")

#: URL schemes this store accepts; Heroku sets `postgres://`, and asyncpg reads
#: both (with `sslmode`, `options` and other libpq parameters in the query).
SCHEMES = ("postgres", "postgresql")
#: Connections kept open when idle: one serves the committer or a read at once.
POOL_MIN_SIZE = 1
#: The key of the transaction-level advisory lock `migrate` holds, so that two
#: processes migrating at once take turns (b"collab" as a number).
MIGRATION_LOCK_KEY = int.from_bytes(b"collab", "big")


def is_postgres_url(url: str) -> bool:
    return url.split(":", 1)[0] in SCHEMES


def _where(url: str) -> str:
    """host:port/database of `url`, without credentials, for error messages."""
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:  # not a number: asyncpg's own error says what is wrong
        port = "?"
    return f"{parts.hostname or 'localhost'}:{port}{parts.path or '/'}"


_LOAD_DOCUMENT = """
    SELECT 0, seq, data FROM doc_snapshots WHERE doc = $1
    UNION ALL
    SELECT 1, seq, data FROM doc_updates
     WHERE doc = $1 AND seq > COALESCE((SELECT seq FROM doc_snapshots WHERE doc = $1), 0)
    UNION ALL
    SELECT 2, epoch, retired FROM documents WHERE doc = $1
    ORDER BY 1, 2
"""


def numbered(sql: str) -> str:
    """`sql` with SQLite's `?` placeholders numbered as asyncpg wants them ($1, $2...)."""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


_CATALOG_APPEND = numbered(catalog.APPEND_SQL)
_CATALOG_RESIZE = numbered(catalog.RESIZE_SQL)
_CATALOG_DELETE = numbered(catalog.DELETE_SQL)
_LIST_DOCUMENTS = numbered(catalog.LIST_SQL)
_EPOCHS = "SELECT doc, epoch FROM documents WHERE doc = ANY($1::text[])"
_PUT_VERSION = numbered(catalog.PUT_VERSION_SQL)
_DELETE_VERSION = numbered(catalog.DELETE_VERSION_SQL)
_DELETE_VERSIONS = numbered(catalog.DELETE_VERSIONS_SQL)
_LIST_VERSIONS = numbered(catalog.LIST_VERSIONS_SQL)
_LOAD_VERSION = numbered(catalog.LOAD_VERSION_SQL)

_ROOM_COLUMNS = ("room, seq, client_id, user_id, body, meta, created_at, edited_at, deleted, "
                 "reactions")


def _room_message(row: asyncpg.Record) -> RoomMessage:
    return RoomMessage(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                       bool(row[8]), row[9])


# -- batched writes --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    """How one table's rows are written: an upsert and a delete of arrays of rows.

    `columns` are (name, Postgres type) in table order, key columns first; `keep`
    names the columns an upsert leaves as they are on an existing row (as the
    SQLite store does), which are also the record fields of the same names.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    keep: tuple[str, ...] = ()

    @property
    def upsert(self) -> str:
        names = ", ".join(name for name, _ in self.columns)
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, 1))
        updates = ", ".join(f"{name} = excluded.{name}" for name, _ in self.columns
                            if name not in self.key and name not in self.keep)
        return (f"INSERT INTO {self.name} ({names}) SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}")

    @property
    def delete(self) -> str:
        kinds = dict(self.columns)
        arrays = ", ".join(f"${i}::{kinds[name]}[]" for i, name in enumerate(self.key, 1))
        match = " AND ".join(f"t.{name} = d.{name}" for name in self.key)
        return (f"DELETE FROM {self.name} t USING unnest({arrays}) "
                f"AS d({', '.join(self.key)}) WHERE {match}")


_STATE = _Table("actor_state", (("kind", "text"), ("key", "text"), ("state", "bytea"),
                                ("updated_at", "float8")), key=("kind", "key"))
_TIMERS = _Table("actor_timers", (
    ("kind", "text"), ("key", "text"), ("id", "text"), ("due", "float8"), ("method", "text"),
    ("args", "bytea"), ("cron", "text"), ("tz", "text"), ("attempts", "int4"),
), key=("kind", "key", "id"))
_QUEUE = _Table("actor_queue", (
    ("kind", "text"), ("key", "text"), ("queue", "text"), ("seq", "int8"), ("body", "bytea"),
    ("attempts", "int4"), ("dead", "int4"), ("error", "text"), ("enqueued_at", "float8"),
), key=("kind", "key", "queue", "seq"), keep=("enqueued_at",))
_WORKFLOWS = _Table("actor_workflows", (
    ("kind", "text"), ("key", "text"), ("id", "text"), ("name", "text"), ("args", "bytea"),
    ("status", "text"), ("steps", "bytea"), ("result", "bytea"), ("error", "text"),
    ("created_at", "float8"), ("updated_at", "float8"),
), key=("kind", "key", "id"), keep=("name", "args", "created_at"))
_ROOM = _Table("room_messages", (
    ("room", "text"), ("seq", "int8"), ("client_id", "text"), ("user_id", "text"),
    ("body", "text"), ("meta", "bytea"), ("created_at", "float8"), ("edited_at", "float8"),
    ("deleted", "int4"), ("reactions", "bytea"),
), key=("room", "seq"))
#: FENCE_SQL in asyncpg's placeholders, answering the token stored after it. (The
#: outer SELECT sees the table as it was before the CTE's upsert, hence GREATEST.)
_FENCE = ("WITH up AS (" + FENCE_SQL.replace("(?, ?, ?)", "($1, $2, $3)") + " RETURNING token) "
          "SELECT GREATEST((SELECT token FROM up), "
          "(SELECT token FROM actor_fences WHERE kind = $1 AND key = $2))")
#: REVOKE_SQL for arrays of (user, time), each user once (a statement may not
#: upsert one row twice).
_REVOKE = REVOKE_SQL.replace("VALUES (?, ?)",
                             "SELECT * FROM unnest($1::text[], $2::float8[])")
_LIMIT = LIMIT_SQL.replace("VALUES (?, ?, ?)",
                           "SELECT * FROM unnest($1::text[], $2::text[], $3::float8[])")
#: Insert-or-ignore: a row written again after a commit whose outcome was unknown
#: (runtime/writes.py keeps and rewrites it) is the same row.
_APPEND = ("INSERT INTO doc_updates (doc, seq, data) "
           "SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[]) "
           "ON CONFLICT (doc, seq) DO NOTHING")
_PUT_SNAPSHOT = ("INSERT INTO doc_snapshots (doc, seq, data, updated_at) VALUES ($1, $2, $3, $4) "
                 "ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, "
                 "updated_at = excluded.updated_at WHERE excluded.seq >= doc_snapshots.seq")
_DELETE_COVERED = "DELETE FROM doc_updates WHERE doc = $1 AND seq <= $2"


def net_effect(changes: Iterable[tuple[K, R | None]], keep: tuple[str, ...] = ()
               ) -> tuple[list[K], list[R]]:
    """Reduce puts (a record) and deletes (None) of rows by key, in submission order,
    to the keys to delete and then the records to upsert, with the same result.

    A later put replaces an earlier one except for the `keep` fields, which an
    upsert never changes: they stay those of the first put since the row was
    last deleted (or as stored, if it was not). A key deleted in the batch is
    deleted first, so a put after the delete inserts a fresh row.
    """
    final: dict[K, R | None] = {}
    deleted: dict[K, None] = {}
    for key, record in changes:
        if record is None:
            deleted[key] = None
        elif keep and (earlier := final.get(key)) is not None:
            record = dataclasses.replace(record, **{name: getattr(earlier, name)
                                                    for name in keep})
        final[key] = record
    return list(deleted), [record for record in final.values() if record is not None]


def _arrays(rows: Iterable[tuple]) -> list[list[Any]]:
    """Rows to one list per column, the arguments of an `unnest` statement."""
    return [list(column) for column in zip(*rows, strict=True)]


def _timer_row(t: TimerRecord) -> tuple:
    return (t.kind, t.key, t.id, t.due, t.method, t.args, t.cron, t.tz, t.attempts)


def _queue_row(m: QueueRecord) -> tuple:
    return (m.kind, m.key, m.queue, m.seq, m.body, m.attempts, int(m.dead), m.error,
            m.enqueued_at)


def _workflow_row(w: WorkflowRecord) -> tuple:
    return (w.kind, w.key, w.id, w.name, w.args, w.status, w.steps, w.result, w.error,
            w.created_at, w.updated_at)


def _room_row(m: RoomMessage) -> tuple:
    return (m.room, m.seq, m.client_id, m.user, m.body, m.meta, m.created_at, m.edited_at,
            int(m.deleted), m.reactions)


class PostgresStore(Store):
    """A Store on Postgres; `url` is a libpq-style URL (postgres:// or postgresql://)."""

    def __init__(self, url: str, pool_size: int = DEFAULT_DATABASE_POOL_SIZE) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"not a Postgres URL: {url.split(':', 1)[0]}:... "
                             "(expected postgres://user:password@host:port/database)")
        self.url = url
        #: Connections at most (COLLAB_DATABASE_POOL_SIZE).
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "open() first"
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=min(POOL_MIN_SIZE, self.pool_size), max_size=self.pool_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConnectionError(
                f"cannot connect to Postgres at {_where(self.url)}: {exc}") from exc
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def migrate(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            # Held until commit: a second process migrating at once waits here, then
            # finds the versions the first one applied.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS collab_schema (version INTEGER NOT NULL)")
            current = await conn.fetchval("SELECT MAX(version) FROM collab_schema") or 0
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        await conn.execute(for_postgres(statement))
                    await conn.execute("INSERT INTO collab_schema (version) VALUES ($1)",
                                       version)
                    current = version
        return current

    async def load_document(self, doc: str) -> StoredDocument:
        # One statement sees one snapshot of the database: the snapshot and the
        # log rows after it come from the same moment, even during a compaction.
        return catalog.stored_document(await self.pool.fetch(_LOAD_DOCUMENT, doc))

    async def list_documents(self, prefix: str, after: str | None, limit: int
                             ) -> list[DocumentInfo]:
        rows = await self.pool.fetch(_LIST_DOCUMENTS, *catalog.list_params(prefix, after, limit))
        return [DocumentInfo(*row) for row in rows]

    async def list_versions(self, doc: str) -> list[VersionInfo]:
        return [VersionInfo(*row) for row in await self.pool.fetch(_LIST_VERSIONS, doc)]

    async def load_version(self, doc: str, version: int) -> bytes | None:
        return await self.pool.fetchval(_LOAD_VERSION, doc, version)

    async def load_actor_state(self, kind: str, key: str) -> bytes | None:
        return await self.pool.fetchval(
            "SELECT state FROM actor_state WHERE kind = $1 AND key = $2", kind, key)

    async def load_timers(self, kind: str, key: str) -> list[TimerRecord]:
        rows = await self.pool.fetch(
            "SELECT kind, key, id, due, method, args, cron, tz, attempts FROM actor_timers "
            "WHERE kind = $1 AND key = $2 ORDER BY due, id", kind, key)
        return [TimerRecord(*row) for row in rows]

    async def next_timer_due(self) -> float | None:
        return await self.pool.fetchval("SELECT MIN(due) FROM actor_timers")

    async def actors_with_timers_due(self, before: float, limit: int) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            "SELECT kind, key, MIN(due) AS first FROM actor_timers WHERE due <= $1 "
            "GROUP BY kind, key ORDER BY first, kind, key LIMIT $2", before, limit)
        return [(row[0], row[1]) for row in rows]

    async def load_queues(self, kind: str, key: str) -> list[QueueRecord]:
        # Byte order of queue names, as SQLite sorts text, whatever the database collation.
        rows = await self.pool.fetch(
            "SELECT kind, key, queue, seq, body, attempts, dead, error, enqueued_at "
            "FROM actor_queue WHERE kind = $1 AND key = $2 ORDER BY queue COLLATE \"C\", seq",
            kind, key)
        return [QueueRecord(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8])
                for r in rows]

    async def load_workflows(self, kind: str, key: str) -> list[WorkflowRecord]:
        rows = await self.pool.fetch(
            "SELECT kind, key, id, name, args, status, steps, result, error, created_at, "
            "updated_at FROM actor_workflows WHERE kind = $1 AND key = $2 "
            "ORDER BY created_at, id", kind, key)
        return [WorkflowRecord(*row) for row in rows]

    async def load_room_messages(self, room: str, *, before: int | None = None,
                                 after: int | None = None, limit: int) -> list[RoomMessage]:
        where, params = "room = $1", [room]
        if before is not None:
            params.append(before)
            where += f" AND seq < ${len(params)}"
        if after is not None:
            params.append(after)
            where += f" AND seq > ${len(params)}"
        # Only `after`: the oldest rows after it; otherwise the newest, reversed below.
        oldest_first = after is not None and before is None
        params.append(limit)
        rows = await self.pool.fetch(
            f"SELECT {_ROOM_COLUMNS} FROM room_messages WHERE {where} "
            f"ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT ${len(params)}", *params)
        messages = [_room_message(row) for row in rows]
        return messages if oldest_first else messages[::-1]

    async def find_room_message(self, room: str, client_id: str) -> RoomMessage | None:
        row = await self.pool.fetchrow(
            f"SELECT {_ROOM_COLUMNS} FROM room_messages WHERE room = $1 AND client_id = $2",
            room, client_id)
        return None if row is None else _room_message(row)

    async def fence_token(self, kind: str, key: str) -> int:
        return await self.pool.fetchval(
            "SELECT COALESCE(MAX(token), 0) FROM actor_fences WHERE kind = $1 AND key = $2",
            kind, key)

    async def load_revocations(self) -> dict[str, float]:
        rows = await self.pool.fetch("SELECT user_id, revoked_at FROM revocations")
        return {user: revoked_at for user, revoked_at in rows}

    async def load_user_limits(self) -> dict[str, tuple[str, float]]:
        rows = await self.pool.fetch("SELECT user_id, limits, set_at FROM user_limits")
        return {user: (limits, set_at) for user, limits, set_at in rows}

    async def room_last_seq(self, room: str) -> int:
        return await self.pool.fetchval(
            "SELECT COALESCE(MAX(seq), 0) FROM room_messages WHERE room = $1", room)

    async def count_room_messages(self, room: str, *, after: int,
                                  exclude_user: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM room_messages WHERE room = $1 AND seq > $2 AND deleted = 0"
        params: list[Any] = [room, after]
        if exclude_user is not None:
            sql += " AND user_id <> $3"
            params.append(exclude_user)
        return await self.pool.fetchval(sql, *params)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        if not ops:
            return
        now = time.time()
        appends = [(op.doc, op.seq, op.data) for op in ops if isinstance(op, AppendUpdate)]
        snapshots = [(op.doc, op.seq, op.data, now) for op in ops
                     if isinstance(op, ReplaceSnapshot)]
        statements = _statements(ops, now)
        fences = {(op.kind, op.key, op.token) for op in ops if isinstance(op, Fence)}
        revocations: dict[str, float] = {}
        for op in ops:
            if isinstance(op, RevokeUser):
                revocations[op.user] = max(op.at, revocations.get(op.user, op.at))
        user_limits: dict[str, tuple[str, float]] = {}  # the latest per user, as the SQL keeps
        for op in ops:
            if isinstance(op, LimitUser) and op.at >= user_limits.get(op.user, ("", op.at))[1]:
                user_limits[op.user] = (op.limits, op.at)

        epochs = incarnation_ops(ops)
        deletions = [op for op in ops if isinstance(op, DeleteDocument)]

        async def apply(conn: asyncpg.Connection) -> None:
            for kind, key, token in fences:  # first: a stale owner writes nothing
                current = await conn.fetchval(_FENCE, kind, key, token)
                if current > token:
                    raise StaleOwner(kind, key, token, current)
            if epochs:  # then: nothing for a deleted incarnation
                stored = dict(await conn.fetch(_EPOCHS, list(epochs)))
                for doc, (epoch, _) in epochs.items():
                    if stored.get(doc, 1) != epoch:
                        raise DocumentReplaced(doc, epoch, stored.get(doc, 1))
            if appends:
                await conn.execute(_APPEND, *_arrays(appends))
                await conn.executemany(_CATALOG_APPEND, catalog.appended_bytes(ops, epochs, now))
            if snapshots:  # after the appends: a snapshot may cover rows of this batch
                await conn.executemany(_PUT_SNAPSHOT, snapshots)
                await conn.executemany(_DELETE_COVERED, [row[:2] for row in snapshots])
                await conn.executemany(_CATALOG_RESIZE, [(row[0],) * 3 for row in snapshots])
            for op in ops:  # in submission order: a version made then pruned goes
                if isinstance(op, PutVersion):
                    await conn.execute(_PUT_VERSION, *catalog.version_row(op))
                elif isinstance(op, DeleteVersion):
                    await conn.execute(_DELETE_VERSION, op.doc, op.id)
            for op in deletions:  # last: they end what the ops before them wrote
                await conn.execute("DELETE FROM doc_updates WHERE doc = $1", op.doc)
                await conn.execute("DELETE FROM doc_snapshots WHERE doc = $1", op.doc)
                if op.content is not None:
                    await conn.execute("INSERT INTO doc_updates (doc, seq, data) "
                                       "VALUES ($1, 1, $2)", op.doc, op.content)
                else:
                    await conn.execute(_DELETE_VERSIONS, op.doc)
                await conn.execute(_CATALOG_DELETE, *catalog.deletion_row(op, now))
            for sql, arrays in statements:
                await conn.execute(sql, *arrays)
            if revocations:
                await conn.execute(_REVOKE, list(revocations), list(revocations.values()))
            if user_limits:
                await conn.execute(_LIMIT, list(user_limits),
                                   [limits for limits, _ in user_limits.values()],
                                   [at for _, at in user_limits.values()])

        for attempt in range(WRITE_ATTEMPTS):
            try:
                await self._transaction(apply)
                return
            except _ConnectionLost as lost:
                if attempt + 1 == WRITE_ATTEMPTS:
                    raise StoreUnavailable(f"Postgres at {_where(self.url)} is unavailable: "
                                           f"{lost.__cause__}") from None
                log.warning("Postgres connection lost before commit (%s); retrying",
                            lost.__cause__)
                await asyncio.sleep(random.uniform(0, RETRY_BASE * 2 ** attempt))

    async def _transaction(self, apply: Callable[[asyncpg.Connection], Any]) -> None:
        """Run `apply` in one transaction. A connection lost before COMMIT was sent
        raises _ConnectionLost (nothing was written: safe to retry); one lost
        during COMMIT raises as is, since the outcome is unknown."""
        committing = False
        try:
            async with self.pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await apply(conn)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await transaction.rollback()
                    raise
                committing = True
                await transaction.commit()
        except _CONNECTION_ERRORS as exc:
            if committing:
                # It may have committed or not: the writer keeps its ops and
                # writes them again, which an upsert makes harmless.
                raise StoreUnavailable(f"Postgres at {_where(self.url)} went away during "
                                       f"COMMIT: {exc}") from None
            raise _ConnectionLost() from exc

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def list_actors(self, kind: str | None, after: tuple[str, str] | None,
                          limit: int) -> list[ActorSummary]:
        sql, args = list_actors_query(kind, after, limit, postgres=True)
        return [ActorSummary(*row) for row in await self.pool.fetch(sql, *args)]


class _ConnectionLost(Exception):
    """The connection broke before the transaction committed: nothing was written."""


#: Errors meaning the connection (not the statement) failed: a restart, a network cut.
_CONNECTION_ERRORS = (OSError, asyncpg.exceptions.PostgresConnectionError,
                      asyncpg.exceptions.InterfaceError, asyncpg.exceptions.AdminShutdownError,
                      asyncpg.exceptions.CrashShutdownError,
                      asyncpg.exceptions.CannotConnectNowError)


def _timer_change(op: PutTimer | DeleteTimer) -> tuple[tuple, TimerRecord | None]:
    if isinstance(op, PutTimer):
        return (op.timer.kind, op.timer.key, op.timer.id), op.timer
    return (op.kind, op.key, op.id), None


def _queue_change(op: PutQueueMessage | DeleteQueueMessage) -> tuple[tuple, QueueRecord | None]:
    if isinstance(op, PutQueueMessage):
        m = op.message
        return (m.kind, m.key, m.queue, m.seq), m
    return (op.kind, op.key, op.queue, op.seq), None


def _statements(ops: Sequence[WriteOp], now: float) -> list[tuple[str, list[list[Any]]]]:
    """The deletes and upserts of the actor and room tables for `ops`, with their
    arguments, in the order the SQLite store applies them."""
    statements: list[tuple[str, list[list[Any]]]] = []

    def add(table: _Table, changes: Iterable[tuple[Any, Any]],
            row: Callable[[Any], tuple]) -> None:
        deletes, upserts = net_effect(changes, table.keep)
        if deletes:
            statements.append((table.delete, _arrays(deletes)))
        if upserts:
            statements.append((table.upsert, _arrays(map(row, upserts))))

    add(_STATE, (((op.kind, op.key), op) for op in ops if isinstance(op, PutActorState)),
        lambda op: (op.kind, op.key, op.data, now))
    add(_TIMERS, (_timer_change(op) for op in ops if isinstance(op, PutTimer | DeleteTimer)),
        _timer_row)
    add(_QUEUE, (_queue_change(op) for op in ops
                 if isinstance(op, PutQueueMessage | DeleteQueueMessage)), _queue_row)
    workflows = (op.workflow for op in ops if isinstance(op, PutWorkflow))
    add(_WORKFLOWS, (((w.kind, w.key, w.id), w) for w in workflows), _workflow_row)
    messages = (op.message for op in ops if isinstance(op, PutRoomMessage))
    add(_ROOM, (((m.room, m.seq), m) for m in messages), _room_row)
    return statements
