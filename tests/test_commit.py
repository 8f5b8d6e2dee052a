"""Group commit: writes submitted during a commit share the next transaction."""

from __future__ import annotations

import asyncio

import pytest

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
