"""The embedded default store: one SQLite file in WAL mode through aiosqlite.

A dedicated writer connection applies each group-committed batch in one
transaction; a separate reader connection loads documents, so loads are not
queued behind writes (WAL lets readers and one writer run side by side).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from collab.storage.base import AppendUpdate, ReplaceSnapshot, Store, StoredDocument, WriteOp
from collab.storage.schema import MIGRATIONS

#: Milliseconds a connection waits for another process's lock before failing
#: (`collab migrate` while a server runs, a backup tool, a second worker).
BUSY_TIMEOUT_MS = 5000


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
    ORDER BY 1, 2
"""


class SQLiteStore(Store):
    def __init__(self, url: str, *, synchronous: str = "NORMAL") -> None:
        self.path = sqlite_path(url)
        self.synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    async def open(self) -> None:
        parent = Path(self.path).parent
        parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self.migrate()
        self._reader = await self._connect()

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def migrate(self) -> int:
        conn = self._writer
        assert conn is not None, "open() first"
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS collab_schema (version INTEGER NOT NULL)")
            async with conn.execute("SELECT MAX(version) FROM collab_schema") as cur:
                row = await cur.fetchone()
            current = row[0] or 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO collab_schema (version) VALUES (?)", (version,))
                current = version
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        return current

    async def load_document(self, doc: str) -> StoredDocument:
        conn = self._reader
        assert conn is not None, "open() first"
        # One statement is one consistent read: the snapshot and the log rows
        # after it come from the same moment, with no transaction to interleave.
        async with conn.execute(_LOAD_DOCUMENT, (doc, doc, doc)) as cur:
            rows = await cur.fetchall()
        snapshot, snapshot_seq, updates = None, 0, []
        for is_log, seq, data in rows:
            if is_log:
                updates.append((seq, bytes(data)))
            else:
                snapshot, snapshot_seq = bytes(data), seq
        return StoredDocument(snapshot, snapshot_seq, updates)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        conn = self._writer
        assert conn is not None, "open() first"
        appends = [(op.doc, op.seq, op.data) for op in ops if isinstance(op, AppendUpdate)]
        snapshots = [op for op in ops if isinstance(op, ReplaceSnapshot)]
        await conn.execute("BEGIN IMMEDIATE")
        try:
            if appends:
                await conn.executemany(
                    "INSERT INTO doc_updates (doc, seq, data) VALUES (?, ?, ?)", appends)
            now = time.time()
            for snap in snapshots:
                await conn.execute(
                    "INSERT INTO doc_snapshots (doc, seq, data, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, "
                    "updated_at = excluded.updated_at WHERE excluded.seq >= doc_snapshots.seq",
                    (snap.doc, snap.seq, snap.data, now))
                await conn.execute(
                    "DELETE FROM doc_updates WHERE doc = ? AND seq <= ?", (snap.doc, snap.seq))
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise

    async def ping(self) -> None:
        conn = self._reader
        assert conn is not None, "open() first"
        async with conn.execute("SELECT 1") as cur:
            await cur.fetchone()
