"""Group commit: writes submitted during a commit share the next transaction."""

from __future__ import annotations

import asyncio

import pytest

from collab.errors import StoreUnavailable
from collab.storage.base import AppendUpdate
from collab.storage.commit import GroupCommitter


class RecordingStore:
    """Counts transactions; each write takes a loop turn like a real store."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list] = []
        self.fail = fail

    async def write(self, ops):
        await asyncio.sleep(0.01)
        if self.fail:
            raise OSError("disk full")
        self.batches.append(list(ops))


async def test_writes_during_a_commit_share_one_transaction():
    store = RecordingStore()
    committer = GroupCommitter(store)
    committer.start()
    first = committer.submit([AppendUpdate("a", 1, b"x")])
    await asyncio.sleep(0)  # the first commit is now running
    rest = [committer.submit([AppendUpdate("a", i, b"x")]) for i in range(2, 102)]
    await asyncio.gather(first, *rest)
    assert [len(b) for b in store.batches] == [1, 100]
    assert committer.stats.batches == 2 and committer.stats.ops == 101
    await committer.close()


async def test_failure_reaches_every_waiter_of_the_batch():
    committer = GroupCommitter(RecordingStore(fail=True))
    committer.start()
    futures = [committer.submit([AppendUpdate("a", i, b"x")]) for i in range(3)]
    for future in futures:
        with pytest.raises(OSError):
            await future
    assert committer.stats.failures == 1
    await committer.close()


async def test_close_commits_what_is_pending():
    store = RecordingStore()
    committer = GroupCommitter(store)
    committer.start()
    future = committer.submit([AppendUpdate("a", 1, b"x")])
    await committer.close()
    assert future.done() and store.batches == [[AppendUpdate("a", 1, b"x")]]
    with pytest.raises(RuntimeError):
        committer.submit([AppendUpdate("a", 2, b"x")])


async def test_on_commit_hears_every_committed_batch():
    store = RecordingStore()
    heard: list[tuple[float, int]] = []
    committer = GroupCommitter(store, on_commit=lambda seconds, ops: heard.append((seconds,
                                                                                  ops)))
    committer.start()
    first = committer.submit([AppendUpdate("a", 1, b"x")])
    await asyncio.sleep(0)
    rest = [committer.submit([AppendUpdate("a", i, b"x")]) for i in range(2, 5)]
    await asyncio.gather(first, *rest)
    assert [ops for _, ops in heard] == [1, 3]
    assert all(seconds > 0 for seconds, _ in heard)
    await committer.close()


async def test_a_failing_observer_fails_no_writer():
    def broken(seconds: float, ops: int) -> None:
        raise RuntimeError("a bug in the metrics")

    committer = GroupCommitter(RecordingStore(), on_commit=broken)
    committer.start()
    await committer.submit([AppendUpdate("a", 1, b"x")])  # committed all the same
    assert committer.stats.batches == 1
    await committer.close()


async def test_failed_batches_are_not_reported_as_commits():
    heard = []
    committer = GroupCommitter(RecordingStore(fail=True), on_commit=lambda *a: heard.append(a))
    committer.start()
    with pytest.raises(OSError):
        await committer.submit([AppendUpdate("a", 1, b"x")])
    assert heard == []
    await committer.close()


class PickyStore(RecordingStore):
    """Refuses any transaction holding a row of doc "bad", as a real store refuses
    text it cannot encode; counts every attempt."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def write(self, ops):
        self.attempts += 1
        await asyncio.sleep(0.001)
        if any(op.doc == "bad" for op in ops):
            raise ValueError("cannot encode")
        self.batches.append(list(ops))


async def test_one_bad_submission_fails_alone():
    store = PickyStore()
    committer = GroupCommitter(store)
    committer.start()
    good = [committer.submit([AppendUpdate(f"d{i}", 1, b"x")]) for i in range(20)]
    bad = committer.submit([AppendUpdate("bad", 1, b"x")])
    more = [committer.submit([AppendUpdate(f"e{i}", 1, b"x")]) for i in range(20)]
    await asyncio.gather(*good, *more)
    with pytest.raises(ValueError):
        await bad
    written = {op.doc for batch in store.batches for op in batch}
    assert len(written) == 40 and "bad" not in written
    # Halving: a handful of transactions, not one per submission.
    assert store.attempts <= 2 * 6 + 1
    await committer.close()


async def test_a_store_that_cannot_write_fails_everyone_without_splitting():
    class Locked(RecordingStore):
        async def write(self, ops):
            self.batches.append(list(ops))
            raise StoreUnavailable("database is locked")

    store = Locked()
    committer = GroupCommitter(store)
    committer.start()
    futures = [committer.submit([AppendUpdate("a", i, b"x")]) for i in range(10)]
    for future in futures:
        with pytest.raises(StoreUnavailable):
            await future
    assert len(store.batches) == 1 and committer.stats.isolations == 0
    await committer.close()


class TurnMarkingStore(RecordingStore):
    """Schedules a callback as each write ends: it runs at the next turn of the loop."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(fail)
        self.next_turn_ran: list[bool] = []

    async def write(self, ops):
        marker = self.next_turn_ran
        asyncio.get_running_loop().call_soon(marker.append, True)
        await super().write(ops)
        asyncio.get_running_loop().call_soon(marker.append, True)


@pytest.mark.parametrize("fail", [False, True])
async def test_submit_then_is_told_in_the_turn_the_commit_ends(fail):
    store = TurnMarkingStore(fail=fail)
    committer = GroupCommitter(store)
    committer.start()
    told = []
    committer.submit_then([AppendUpdate("a", 1, b"x")],
                          lambda error: told.append((error, len(store.next_turn_ran))))
    await committer.close()
    # The write's own sleep let the first marker run; the second, scheduled as the
    # write ended, had not run yet when `then` was called: the same turn.
    [(error, markers)] = told
    assert markers == 1
    assert isinstance(error, OSError) if fail else error is None


async def test_a_waiter_that_raises_does_not_keep_the_others_untold(caplog):
    committer = GroupCommitter(RecordingStore())
    committer.start()
    told = []

    def broken(error):
        raise ValueError("bug in a waiter")

    committer.submit_then([AppendUpdate("a", 1, b"x")], broken)
    committer.submit_then([AppendUpdate("a", 2, b"x")], told.append)
    future = committer.submit([AppendUpdate("a", 3, b"x")])
    await future
    assert told == [None]
    assert "a commit's waiter failed" in caplog.text
    await committer.close()


async def test_flush_waits_for_submissions_told_by_function():
    store = RecordingStore()
    committer = GroupCommitter(store)
    committer.start()
    told = []
    for i in range(3):
        committer.submit_then([AppendUpdate("a", i, b"x")], told.append)
    await committer.flush()
    assert told == [None] * 3 and len(store.batches) == 1
    await committer.flush()  # nothing pending: at once, and no empty transaction
    assert len(store.batches) == 1
    await committer.close()
