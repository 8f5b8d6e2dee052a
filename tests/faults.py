"""Faults injected into a running server's SQLite store from the test process."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator

from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT, until


@contextlib.asynccontextmanager
async def write_lock_held(srv: ServerProcess) -> AsyncIterator[None]:
    """Another process's exclusive lock on the server's SQLite file, held inside:
    the server's commits wait for it, and fail after its 5 s busy timeout."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        db = sqlite3.connect(srv.db_path, isolation_level=None, timeout=TIMEOUT)
        db.execute("BEGIN EXCLUSIVE")
        taken.set()
        release.wait(TIMEOUT * 2)
        db.execute("ROLLBACK")
        db.close()

    holder = asyncio.create_task(asyncio.to_thread(hold))
    try:
        await until(taken.is_set)
        yield
    finally:
        release.set()
        await holder
