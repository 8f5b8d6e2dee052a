"""An actor's write chain: order, one submission in flight, and ops kept across a
failed commit so the store always holds a prefix of what the actor applied."""

from __future__ import annotations

import asyncio

import pytest

from collab.errors import StoreUnavailable
from collab.runtime.writes import WriteChain
from collab.storage.base import AppendUpdate, Fence, StaleOwner
from collab.storage.commit import GroupCommitter
from tests.waits import until


class FlakyStore:
    """Records each transaction; fails the next `failures` writes like a store
    that cannot write (a held lock, a full disk)."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.failures = 0
        self.error: Exception = StoreUnavailable("database is locked")

    async def write(self, ops):
        await asyncio.sleep(0.001)
        if self.failures:
            self.failures -= 1
            raise self.error
        self.batches.append(list(ops))

    def seqs(self) -> list[int]:
        return [op.seq for batch in self.batches for op in batch if type(op) is AppendUpdate]


@pytest.fixture
async def store():
    return FlakyStore()


@pytest.fixture
async def committer(store):
    committer = GroupCommitter(store)
    committer.start()
    yield committer
    await committer.close()


def chain(committer, recovered=None, fence=None) -> WriteChain:
    return WriteChain(committer, lambda: list(fence or []), recovered or (lambda: None))


def row(seq: int) -> AppendUpdate:
    return AppendUpdate("d", seq, b"u%d" % seq)


async def test_one_turns_submissions_go_as_one_and_in_order(store, committer):
    writes = chain(committer)
    futures = [writes.submit([row(i)]) for i in range(1, 6)]
    await asyncio.gather(*futures)
    assert store.batches == [[row(i) for i in range(1, 6)]]


async def test_at_most_one_submission_in_flight(store, committer):
    writes = chain(committer)
    first = writes.submit([row(1)])
    await asyncio.sleep(0.0005)  # the first is in flight now
    later = [writes.submit([row(i)]) for i in range(2, 4)]
    await asyncio.gather(first, *later)
    assert store.batches == [[row(1)], [row(2), row(3)]]


async def test_failed_ops_go_first_in_the_next_commit(store, committer):
    recovered = []
    writes = chain(committer, recovered=lambda: recovered.append(True))
    store.failures = 1
    with pytest.raises(StoreUnavailable):
        await writes.submit([row(1), row(2)])
    assert writes.kept == 2 and writes.busy
    await writes.submit([row(3)])  # acknowledged only with 1 and 2 stored first
    assert store.seqs() == [1, 2, 3]
    assert writes.kept == 0 and not writes.busy and recovered == [True]


async def test_kept_ops_are_written_again_by_themselves(store, committer):
    recovered = []
    writes = chain(committer, recovered=lambda: recovered.append(True))
    store.failures = 3  # the first try and two retries fail
    with pytest.raises(StoreUnavailable):
        await writes.submit([row(1)])
    await until(lambda: recovered == [True])
    assert store.seqs() == [1] and not writes.busy


async def test_a_barrier_waits_for_everything_before_it(store, committer):
    writes = chain(committer)
    assert writes.barrier().done()  # nothing pending: at once
    store.failures = 1
    failed = writes.submit([row(1)])
    barrier = writes.barrier()
    with pytest.raises(StoreUnavailable):
        await failed
    with pytest.raises(StoreUnavailable):  # it travelled with the failed commit
        await barrier
    await writes.barrier()  # the kept row goes now
    assert store.seqs() == [1]


async def test_a_stale_owner_drops_its_ops(store, committer):
    writes = chain(committer, fence=[Fence("doc", "d", 1)])
    store.failures, store.error = 1, StaleOwner("doc", "d", 1, 2)
    with pytest.raises(StaleOwner):
        await writes.submit([row(1)])
    assert writes.kept == 0 and not writes.busy


async def test_every_submission_is_fenced(store, committer):
    writes = chain(committer, fence=[Fence("doc", "d", 7)])
    await writes.submit([row(1)])
    assert store.batches == [[Fence("doc", "d", 7), row(1)]]


async def test_flush_waits_for_the_queue_and_never_raises(store, committer):
    writes = chain(committer)
    store.failures = 1
    writes.submit([row(1)])
    writes.submit([row(2)])
    await writes.flush()
    assert writes.kept == 2 and store.seqs() == []
    writes.close()  # no retry after close
    await asyncio.sleep(0.3)
    assert store.seqs() == []


async def test_send_queued_hands_this_turns_writes_over_at_once(store, committer):
    writes = chain(committer)
    first = writes.submit([row(1)])
    second = writes.submit([row(2)])
    assert committer.pending == 0  # queued for the next turn
    writes.send_queued()
    assert committer.pending == 2  # in group commit now, as one submission
    writes.send_queued()  # nothing more queued: nothing more sent
    assert committer.pending == 2
    await asyncio.gather(first, second)
    assert store.batches == [[row(1), row(2)]]


async def test_submit_then_is_told_of_failure_and_the_ops_are_kept(store, committer):
    writes = chain(committer)
    store.failures = 1
    told = []
    writes.submit_then([row(1)], told.append)
    await until(lambda: len(told) == 1)
    assert isinstance(told[0], StoreUnavailable)
    assert writes.kept == 1 and writes.busy
    writes.submit_then([row(2)], told.append)
    await until(lambda: len(told) == 2)
    assert told[1] is None and store.seqs() == [1, 2] and not writes.busy


async def test_flush_waits_for_submit_then_writes(store, committer):
    writes = chain(committer)
    told = []
    writes.submit_then([row(1)], told.append)
    await writes.flush()
    assert told == [None] and not writes.busy
    writes.close()
    writes.submit_then([row(2)], told.append)
    await writes.flush()  # closed: returns rather than waiting for a send that never comes
