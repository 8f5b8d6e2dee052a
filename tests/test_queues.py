"""Durable queues in-process on a real SQLite store: order, at-least-once with
rollback, retries, dead letters and re-drive, limits, and restart."""

from __future__ import annotations

import sqlite3

import pytest

from collab.runtime.actions import ActionError
from collab.runtime.queues import MAX_MESSAGE_BYTES, MessageTooLarge, QueueFull, UnknownQueue
from collab.runtime.refs import ActorRef
from tests.apps.counter import PatientWorker, Worker, registry
from tests.inproc import Runtime
from tests.waits import until


def worker(rt: Runtime, key: str = "w") -> ActorRef:
    return ActorRef(rt.system, Worker, key)


async def done_is(rt: Runtime, expected: list, key: str = "w", kind: type = Worker) -> None:
    async def check() -> bool:
        return await ActorRef(rt.system, kind, key).call("done") == expected

    await until(check)


async def test_messages_are_handled_in_order_and_removed(runtime):
    jobs = worker(runtime).queue("jobs")
    seqs = [await jobs.send({"n": n}) for n in range(10)]
    assert seqs == list(range(1, 11))
    assert await worker(runtime).call("enqueue_own", 10) == 11  # from the actor itself
    await done_is(runtime, list(range(11)))
    await until(lambda: runtime.system.committer.pending == 0)
    assert await runtime.store.load_queues("worker", "w") == []
    assert await jobs.inspect() == {"pending": 0, "dead": []}


async def test_a_failed_delivery_is_rolled_back_and_retried(runtime):
    await worker(runtime).call("fail_next", 2)
    await worker(runtime).queue("jobs").send({"n": 1})
    await done_is(runtime, [1])  # the failed attempts left no "rolled back" entries
    state_attempts = await worker(runtime).call("done")
    assert state_attempts == [1]


async def test_poison_message_becomes_a_dead_letter_and_can_be_redriven(runtime):
    jobs = worker(runtime).queue("jobs")
    await jobs.send({"n": 0, "poison": True})
    await jobs.send({"n": 1})
    await done_is(runtime, [1])  # the queue moved on after 3 attempts

    async def dead_letter() -> bool:
        return len((await jobs.inspect())["dead"]) == 1

    await until(dead_letter)
    dead = (await jobs.inspect())["dead"][0]
    assert dead["message"] == {"n": 0, "poison": True} and dead["attempts"] == 3
    assert "cannot do this job" in dead["error"]
    assert await jobs.redrive() == 1
    # Re-driven to the end of the queue: it fails again and returns to the dead letters.
    await until(dead_letter)
    assert await jobs.redrive() == 1


async def test_limits_and_unknown_queues(runtime):
    ref = worker(runtime, "limits")
    with pytest.raises(UnknownQueue):
        await ref.queue("nope").send({})
    with pytest.raises(MessageTooLarge):
        await ref.queue("jobs").send("x" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ActionError) as info:
        await ref.queue("jobs").send(object())
    assert info.value.code == "invalid_message"
    await ref.call("fail_next", 10_000)  # keep everything waiting
    for n in range(Worker.queue_max_length):
        await ref.queue("jobs").send({"n": n})
    with pytest.raises(QueueFull):
        await ref.queue("jobs").send({"n": "one too many"})


async def test_send_many_appends_in_order_in_one_commit_all_or_none(runtime):
    ref = worker(runtime, "many")
    jobs = ref.queue("jobs")
    assert await jobs.send_many([]) == []
    await ref.call("fail_next", 10_000)  # keep everything waiting
    stats = runtime.system.committer.stats
    batches = stats.batches
    assert await jobs.send_many([{"n": n} for n in range(20)]) == list(range(1, 21))
    assert stats.batches - batches <= 3  # one, give or take a retry timer's write
    assert await jobs.send({"n": 20}) == 21  # one numbering for both ways of sending
    pending = (await jobs.inspect())["pending"]  # the head may be out, being retried
    room = Worker.queue_max_length - pending
    with pytest.raises(QueueFull, match=f"room for {room} more"):
        await jobs.send_many([{"n": n} for n in range(room + 1)])  # none of them is kept
    assert (await jobs.inspect())["pending"] == pending
    assert await jobs.send_many([{"n": n} for n in range(room)]) != []  # exactly full
    with pytest.raises(QueueFull):
        await jobs.send_many([{}])
    with pytest.raises(UnknownQueue):
        await ref.queue("nope").send_many([{}])
    with pytest.raises(MessageTooLarge):
        await jobs.send_many([{}, "x" * (MAX_MESSAGE_BYTES + 1)])


async def test_pending_messages_survive_a_restart(runtime_factory, tmp_path):
    rt = runtime_factory(registry, "restart")
    await rt.start()
    patient = ActorRef(rt.system, PatientWorker, "p")
    await patient.call("fail_next", 1)  # the first delivery fails: a retry 0.5 s later
    for n in range(5):
        await patient.queue("jobs").send({"n": n})
    await rt.stop()  # well before the retry
    with sqlite3.connect(tmp_path / "restart.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM actor_queue").fetchone()[0] == 5
    await rt.start()  # nobody calls the worker: its queue's durable timer wakes it
    await until(lambda: rt.system.timer_waker.woken > 0)
    await done_is(rt, [0, 1, 2, 3, 4], key="p", kind=PatientWorker)
    await rt.stop()


async def test_a_dead_letter_with_integer_map_keys_can_be_inspected(runtime):
    jobs = worker(runtime, "int-keys").queue("jobs")
    await jobs.send({"n": 7, "poison": True, 3: "a number key"})

    async def dead_letter() -> bool:
        return len((await jobs.inspect())["dead"]) == 1

    await until(dead_letter)
    assert (await jobs.inspect())["dead"][0]["message"][3] == "a number key"
