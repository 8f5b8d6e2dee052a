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
