"""Group commit: every write submitted while a commit runs goes into the next one.

Actors submit lists of write ops and get a future that resolves once those ops
are committed. One task drains the queue: it takes everything pending, writes it
in a single store transaction, then resolves all of the batch's futures. So the
number of transactions tracks the store's speed, not the update rate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from collab.storage.base import Store, WriteOp

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CommitStats:
    batches: int = 0
    ops: int = 0
    failures: int = 0


class GroupCommitter:
    """Serialises all writes to one store into back-to-back batched transactions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stats = CommitStats()
        self._pending_ops: list[WriteOp] = []
        self._pending_futures: list[asyncio.Future[None]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    def submit(self, ops: Sequence[WriteOp]) -> asyncio.Future[None]:
        """Queue `ops` for the next transaction; the future resolves after it commits
        (or raises the store's error). Ops from one call are never split."""
        if self._closing:
            raise RuntimeError("committer is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_ops.extend(ops)
        self._pending_futures.append(future)
        self._wakeup.set()
        return future

    @property
    def pending(self) -> int:
        return len(self._pending_ops)

    async def flush(self) -> None:
        """Wait until everything submitted so far has committed (or failed)."""
        if self._pending_futures:
            await asyncio.gather(*self._pending_futures, return_exceptions=True)

    async def close(self) -> None:
        """Commit what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending_futures:
                if self._closing:
                    return
                continue
            ops, futures = self._pending_ops, self._pending_futures
            self._pending_ops, self._pending_futures = [], []
            try:
                await self.store.write(ops)
            except Exception as exc:  # the store's failure belongs to every waiter
                self.stats.failures += 1
                log.error("commit of %d ops failed: %s", len(ops), exc)
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # waiters may be gone; avoid "never retrieved"
            else:
                self.stats.batches += 1
                self.stats.ops += len(ops)
                for future in futures:
                    if not future.done():
                        future.set_result(None)
            if self._pending_futures or self._closing:
                self._wakeup.set()
