"""One actor's path to the store: its writes commit in the order it made them, and
a failed commit never leaves a hole.

An actor has at most one submission in group commit at a time; whatever it
submits meanwhile waits and goes next, as one submission. When a commit fails
(a lock held by another process, a lost Postgres backend, a full disk), its
ops are kept and go first in the actor's next submission, or alone after a
backoff if nothing else comes. So the store always holds a prefix of what the
actor applied in memory, and a later write is never acknowledged while an
earlier one is missing. Callers still hear of the failure at once (their
future fails): the write is not acknowledged, but it is not dropped either.
Every op is an upsert or a delete (appends of document updates are insert-or-
ignore), so writing kept ops again is harmless if a failed commit did land.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from collab.storage.base import StaleOwner, WriteOp
from collab.storage.commit import GroupCommitter, Then, Waiter, settle

log = logging.getLogger(__name__)

#: Seconds before kept ops are written again when nothing else comes, doubling
#: per failure up to RETRY_MAX: soon enough that a lock held for a moment costs
#: little, rare enough that a store that is down is not hammered.
RETRY_FIRST = 0.1
RETRY_MAX = 5.0


class WriteChain:
    """The ordered, hole-free write path of one actor.

    `fence()` gives the ops that must lead every submission (the lease fence, or
    nothing); `recovered()` is called when ops kept after a failure have finally
    committed (the actor may now announce what it held back).
    """

    __slots__ = ("_closed", "_committer", "_failures", "_fence", "_in_flight", "_kept", "_landed",
                 "_loop", "_queued", "_recovered", "_retry", "_send_soon", "_stale", "_waiters")

    def __init__(self, committer: GroupCommitter, fence: Callable[[], list[WriteOp]],
                 recovered: Callable[[], None],
                 stale: Callable[[], None] | None = None) -> None:
        """`recovered()`: a commit after failed ones went through. `stale()`: the store
        refused a commit because another process owns the actor now."""
        self._committer = committer
        self._fence = fence
        self._recovered = recovered
        self._stale = stale
        # Kept: on Python 3.11, each asyncio.get_running_loop() is a getpid() system call.
        self._loop = asyncio.get_running_loop()
        self._queued: list[WriteOp] = []
        self._waiters: list[Waiter] = []
        self._kept: list[WriteOp] = []  # ops of failed commits, oldest first
        self._in_flight = False  # a submission of ours is in group commit
        #: Resolved when the submission in flight is settled, for `flush` (made on demand).
        self._landed: asyncio.Future[None] | None = None
        self._send_soon: asyncio.Handle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._failures = 0  # consecutive failed commits, for the backoff
        self._closed = False

    @property
    def busy(self) -> bool:
        """True while anything submitted is not committed yet (or was kept after a
        failure): the actor must stay in memory."""
        return bool(self._in_flight or self._waiters or self._kept)

    @property
    def kept(self) -> int:
        """Ops kept after a failed commit, waiting to be written again."""
        return len(self._kept)

    def submit(self, ops: Sequence[WriteOp]) -> asyncio.Future[None]:
        """Queue `ops` behind everything this actor submitted before; the future
        resolves once they (and all of those) are committed, or fails with the
        error of the commit that carried them (the ops are then kept and written
        again). An empty `ops` is a barrier: it resolves once everything before
        it is committed (at once if nothing is pending)."""
        future: asyncio.Future[None] = self._loop.create_future()
        if not ops and not self.busy:
            future.set_result(None)
            return future
        self._queue(ops, future)
        return future

    def submit_then(self, ops: Sequence[WriteOp], then: Then) -> None:
        """`submit`, but `then(error)` is called as soon as the commit is settled, in
        the same turn of the event loop (None: committed). For a caller that acts on
        the commit right away: a future would tell it a turn later."""
        self._queue(ops, then)

    def _queue(self, ops: Sequence[WriteOp], waiter: Waiter) -> None:
        self._queued.extend(ops)
        self._waiters.append(waiter)
        self._schedule_send()

    def send_queued(self) -> None:
        """Hand what was submitted in this turn to group commit now, rather than at the
        start of the next turn (the actor's drain is over: nothing more comes with it)."""
        if self._send_soon is not None:
            self._send()

    def barrier(self) -> asyncio.Future[None]:
        """A future that resolves once every op submitted so far is committed."""
        return self.submit(())

    async def flush(self) -> None:
        """Wait until nothing is in flight or queued (kept ops may remain: ask
        `kept`). Never raises: failures belong to the submitters' futures."""
        while self._in_flight or self._waiters:
            if not self._in_flight:
                self._send()
                if not self._in_flight:  # nothing to carry, or the chain is closed
                    return
                continue
            if self._landed is None:
                self._landed = self._loop.create_future()
            await self._landed

    def close(self) -> None:
        """Stop retrying (the actor is gone); kept ops are dropped."""
        self._closed = True
        for handle in (self._send_soon, self._retry):
            if handle is not None:
                handle.cancel()
        if self._kept:
            log.error("%d ops were never committed: the store kept failing", len(self._kept))

    # -- sending ----------------------------------------------------------------------

    def _schedule_send(self) -> None:
        # In the next loop turn, so everything the actor submits in this one goes
        # as one submission.
        if not self._in_flight and self._send_soon is None and not self._closed:
            self._send_soon = self._loop.call_soon(self._send)

    def _send(self) -> None:
        if self._send_soon is not None:  # called directly (flush): no second send
            self._send_soon.cancel()
            self._send_soon = None
        if self._in_flight or self._closed:
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        carried = self._kept + self._queued
        waiters = self._waiters
        retried = bool(self._kept)
        self._kept, self._queued, self._waiters = [], [], []
        if not carried:
            settle(waiters, None)
            return
        self._in_flight = True
        try:
            self._committer.submit_then([*self._fence(), *carried],
                                        lambda error: self._done(error, carried, waiters, retried))
        except RuntimeError as exc:  # the committer is closed: the server is stopping
            self._in_flight = False
            self._kept = carried
            settle(waiters, exc)

    def _done(self, error: BaseException | None, carried: list[WriteOp], waiters: list[Waiter],
              retried: bool) -> None:
        self._in_flight = False
        landed, self._landed = self._landed, None
        if landed is not None and not landed.done():
            landed.set_result(None)
        if error is None:
            self._failures = 0
            settle(waiters, None)
            if retried:
                self._recovered()
        elif isinstance(error, StaleOwner):
            # Another process owns the actor now: these ops may never be written.
            settle(waiters, error)
            if self._stale is not None:
                self._stale()
        else:
            self._kept = carried + self._kept  # (always empty here: one in flight)
            self._failures += 1
            settle(waiters, error)
            if not self._waiters:
                self._arm_retry()
        if self._waiters:
            self._schedule_send()

    def _arm_retry(self) -> None:
        if self._closed:
            return
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (self._failures - 1))
        delay *= random.uniform(0.5, 1.0)  # processes that failed together retry apart
        self._retry = self._loop.call_later(delay, self._send)
