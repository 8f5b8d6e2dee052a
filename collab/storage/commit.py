"""Group commit: every write submitted while a commit runs goes into the next one.

Actors submit lists of write ops and get a future that resolves once those ops
are committed. One task drains the queue: it takes everything pending, writes it
in a single store transaction, then resolves all of the batch's futures. So the
number of transactions tracks the store's speed, not the update rate.

One submission's ops are never split, and one submission's failure is its own:
if the store refuses a batch because a submission came from an actor's former
owner (StaleOwner: its Fence carries an old lease token), only the submissions
fenced with that stale token fail; if a row cannot be written (text the store
cannot hold, say), the batch is split until the failing submissions are alone,
and the rest commit. Only a store that cannot write at all fails everyone.
Submissions in one batch are independent (an actor has at most one in flight:
runtime/writes.py), so committing them apart keeps every actor's order.

`on_commit`, if given, hears of every committed batch (its duration and size):
the way a caller above storage measures persist latency without storage knowing
how it is reported.

A submission is told of its commit by a future (`submit`) or by a function called
right after the commit, in the same turn of the event loop (`submit_then`): a
future's callbacks run a turn later, and the chain from a commit to a client's
acknowledgement would pay one turn per link (runtime/writes.py uses `submit_then`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from collab.errors import StoreUnavailable
from collab.storage.base import (
    AppendUpdate,
    DeleteDocument,
    DocumentReplaced,
    Fence,
    ReplaceSnapshot,
    StaleOwner,
    Store,
    WriteOp,
)

log = logging.getLogger(__name__)

#: Told of a commit: None once it committed, else the error it failed with.
Then = Callable[[BaseException | None], None]
#: Whoever waits on a submission: a future, or a function called when it is settled.
Waiter = asyncio.Future[None] | Then
Submission = tuple[Sequence[WriteOp], Waiter]
#: Called after each committed batch with (seconds the transaction took, ops in it).
CommitObserver = Callable[[float, int], None]


@dataclass(slots=True)
class CommitStats:
    batches: int = 0
    ops: int = 0
    failures: int = 0  # batches (or parts of one, once isolated) that failed
    stale: int = 0  # submissions refused because their writer lost its lease
    isolations: int = 0  # failed batches split to find the submissions at fault


class GroupCommitter:
    """Serialises all writes to one store into back-to-back batched transactions."""

    def __init__(self, store: Store, on_commit: CommitObserver | None = None) -> None:
        self.store = store
        self.stats = CommitStats()
        self._on_commit = on_commit
        self._pending: list[Submission] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        #: What the committer task awaits while nothing is pending.
        self._idle: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        # Kept: on Python 3.11, each asyncio.get_running_loop() is a getpid() system call.
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="group-commit")

    def submit(self, ops: Sequence[WriteOp]) -> asyncio.Future[None]:
        """Queue `ops` for the next transaction; the future resolves after it commits
        (or raises the store's error). Ops from one call are never split."""
        future: asyncio.Future[None] = (self._loop or asyncio.get_running_loop()).create_future()
        self._queue(ops, future)
        return future

    def submit_then(self, ops: Sequence[WriteOp], then: Then) -> None:
        """`submit`, but `then(error)` is called as soon as the commit is over: None if
        it committed, else the store's error. It must not raise (it is logged if it does)."""
        self._queue(ops, then)

    def _queue(self, ops: Sequence[WriteOp], waiter: Waiter) -> None:
        if self._closing:
            raise RuntimeError("committer is closed")
        self._pending.append((ops, waiter))
        self._wake()

    def _wake(self) -> None:
        idle = self._idle
        if idle is not None and not idle.done():
            idle.set_result(None)

    @property
    def pending(self) -> int:
        return sum(len(ops) for ops, _ in self._pending)

    async def flush(self) -> None:
        """Wait until everything submitted so far has committed (or failed)."""
        if self._pending:
            # Batches are settled in order: an empty submission queued last is settled
            # after every one before it, and writes nothing itself.
            try:
                await self.submit(())
            except Exception:  # that error is its batch's submitters' to hear
                pass

    async def close(self) -> None:
        """Commit what is pending, then stop."""
        self._closing = True
        self._wake()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = self._loop  # start()'s
        assert loop is not None
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._idle = loop.create_future()
                await self._idle
                self._idle = None
                continue
            batch, self._pending = self._pending, []
            await self._commit(batch)
            # Not kept while idle: its waiters hold what they will act on (a document's
            # acknowledgement holds its senders' sockets).
            del batch

    async def _commit(self, batch: list[Submission]) -> None:
        error = await self._attempt(batch)
        if error is not None:
            await self._isolate(batch, error)

    async def _attempt(self, batch: list[Submission]) -> BaseException | None:
        """Write `batch` in one transaction; settle it if that commits, else return
        the error (nothing of the batch was written)."""
        ops = [op for sub_ops, _ in batch for op in sub_ops]
        if not ops:  # only flush() markers
            self._settle(batch, None)
            return None
        started = time.perf_counter()
        try:
            await self.store.write(ops)
        except Exception as exc:
            return exc
        self.stats.batches += 1
        self.stats.ops += len(ops)
        if self._on_commit is not None:
            try:
                self._on_commit(time.perf_counter() - started, len(ops))
            except Exception:  # a reporting bug must not fail the writers' futures
                log.exception("commit observer failed")
        self._settle(batch, None)
        return None

    async def _isolate(self, batch: list[Submission], error: BaseException) -> None:
        """`batch` failed with `error`: fail only the submissions it belongs to and
        commit the others.

        A StaleOwner names its actor: its fenced submissions fail, the rest go
        again. A store that cannot write (StoreUnavailable: a lock, a lost
        connection, a full disk) fails everyone. Any other error came from some
        row: halves are tried apart until the failing submissions are alone, so
        one bad row fails only its own request. If both halves fail, the store is
        failing them alike and both are settled with their errors.
        """
        if isinstance(error, StaleOwner):
            stale = [sub for sub in batch if _fenced_out(sub[0], error)]
            if stale:
                log.warning("refusing writes from a former owner: %s", error.message)
                self.stats.stale += len(stale)
                self._settle(stale, error)
                kept = [sub for sub in batch if not _fenced_out(sub[0], error)]
                if kept:
                    await self._commit(kept)
                return
        if len(batch) == 1 or (isinstance(error, StoreUnavailable)
                               and not isinstance(error, StaleOwner)):
            log.error("commit of %d submissions failed: %s", len(batch), error)
            self.stats.failures += 1
            self._settle(batch, error)
            return
        self.stats.isolations += 1
        middle = len(batch) // 2
        halves = (batch[:middle], batch[middle:])
        errors = [await self._attempt(half) for half in halves]
        if all(isinstance(e, Exception) and not isinstance(e, StaleOwner) for e in errors):
            log.error("commit of %d submissions failed: %s", len(batch), error)
            self.stats.failures += 1
            for half, half_error in zip(halves, errors, strict=True):
                self._settle(half, half_error)
            return
        for half, half_error in zip(halves, errors, strict=True):
            if half_error is not None:
                await self._isolate(half, half_error)

    def _settle(self, batch: list[Submission], error: BaseException | None) -> None:
        settle((waiter for _, waiter in batch), error)


def settle(waiters: Iterable[Waiter], error: BaseException | None) -> None:
    """Tell a commit's `waiters` how it went: resolve the pending futures with None,
    or with the commit's error; call the functions with None or the error."""
    for waiter in waiters:
        if not isinstance(waiter, asyncio.Future):
            try:
                waiter(error)
            except Exception:  # one waiter's bug must not keep the others untold
                log.exception("a commit's waiter failed")
            continue
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
            waiter.exception()  # waiters may be gone; avoid "never retrieved"


def _fenced_out(ops: Sequence[WriteOp], stale: StaleOwner) -> bool:
    """True if `ops` were fenced with a token older than the store's for that actor,
    or write a document incarnation older than the store's."""
    if isinstance(stale, DocumentReplaced):
        return any(isinstance(op, AppendUpdate | ReplaceSnapshot | DeleteDocument)
                   and op.doc == stale.key and op.epoch < stale.current for op in ops)
    return any(type(op) is Fence and op.kind == stale.kind and op.key == stale.key
               and op.token < stale.current for op in ops)
