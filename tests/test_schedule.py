"""Durable timers and cron in-process on a real SQLite store: firing, ids, waking a
hibernated actor, missed fires after a restart (run once), retries, cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from collab.runtime.refs import ActorRef
from collab.runtime.schedule import ScheduleError, next_cron_time
from tests.apps.counter import Reminder, registry
from tests.inproc import Runtime
from tests.waits import until


def reminder(rt: Runtime, key: str = "r") -> ActorRef:
    return ActorRef(rt.system, Reminder, key)


async def fired(rt: Runtime, key: str = "r") -> list:
    return await reminder(rt, key).call("fired")


async def test_timer_fires_with_its_id_and_is_deleted(runtime):
    timer_id = await reminder(runtime).call("remind_in", 0.05, "tea")
    assert [t["id"] for t in await reminder(runtime).call("timers")] == [timer_id]

    async def rang() -> bool:
        return bool(await fired(runtime))

    await until(rang)
    assert await fired(runtime) == [["tea", timer_id]]
    assert await reminder(runtime).call("timers") == []
    assert await runtime.store.load_timers("reminder", "r") == []


async def test_due_timer_wakes_a_hibernated_actor(runtime):
    await reminder(runtime).call("remind_in", 0.6, "wake up")
    await until(lambda: runtime.system.loaded_count == 0)  # hibernated before the timer
    await until(lambda: runtime.system.timer_waker.woken > 0)

    async def rang() -> bool:
        return bool(await fired(runtime))

    await until(rang)
    assert (await fired(runtime))[0][0] == "wake up"


async def test_missed_fires_run_once_after_restart(runtime_factory):
    rt = runtime_factory(registry, "restart")
    await rt.start()
    await reminder(rt).call("remind_in", 0.2, "once")
    await reminder(rt).call("every_second", "tick")
    await rt.stop()
    await asyncio.sleep(2.5)  # the one-shot and about two cron ticks are missed
    started = time.time()
    await rt.start()
    state = await reminder(rt).call("fired")  # loading fires what is due
    assert sorted(note for note, _ in state) == ["once", "tick"]  # each once: coalesced
    cron = [t for t in await reminder(rt).call("timers") if t["cron"]]
    assert len(cron) == 1 and cron[0]["due"] > started
    await rt.stop()


async def test_failed_fire_is_retried_with_backoff_and_rolled_back(runtime):
    ref = reminder(runtime)
    await ref.call("fail_next", 1)
    timer_id = await ref.call("remind_in", 0.0, "retry me")
    await until(lambda: runtime.system.committer.pending == 0)

    async def retried() -> bool:
        timers = await ref.call("timers")
        return bool(timers) and timers[0]["due"] > time.time() + 1

    await until(retried)  # moved about 2 s ahead after the first failure
    stored = await runtime.store.load_timers("reminder", "r")
    assert stored[0].attempts == 1 and stored[0].id == timer_id
    assert "lost" not in await fired(runtime)

    async def rang() -> bool:
        return bool(await fired(runtime))

    await until(rang)
    assert await fired(runtime) == [["retry me", timer_id]]


async def test_cancel(runtime):
    ref = reminder(runtime)
    timer_id = await ref.call("remind_in", 0.3, "never")
    assert await ref.call("cancel", timer_id) is True
    assert await ref.call("cancel", timer_id) is False
    await asyncio.sleep(0.5)
    assert await fired(runtime) == []


@pytest.mark.parametrize(
    "schedule",
    [
        lambda a: a.schedule.after(1, "no_such_method"),
        lambda a: a.schedule.after(1, "_fire"),
        lambda a: a.schedule.after(1, "ring", object()),
        lambda a: a.schedule.cron("x", "not cron", "ring", "x"),
        lambda a: a.schedule.cron("x", "* * * * *", "ring", "x", tz="Mars/Olympus"),
    ],
)
async def test_invalid_schedules_are_refused(runtime, schedule):
    actor = runtime.system.get(Reminder, "bad")
    await reminder(runtime, "bad").call("fired")  # loaded
    with pytest.raises(ScheduleError):
        await schedule(actor)


def test_next_cron_time_in_a_time_zone():
    # 2026-03-29 00:30 UTC: 09:00 in Paris (UTC+2 after the DST switch) is 07:00 UTC.
    start = 1774744200.0
    assert next_cron_time("0 9 * * *", "Europe/Paris", start) == 1774767600.0


async def test_a_timer_whose_arguments_have_integer_map_keys_can_be_listed(runtime):
    """Timer arguments are stored and read with the one codec: a map keyed by numbers
    (which MessagePack allows and Python code makes) lists like any other."""
    timer_id = await reminder(runtime).call("remind_about", 3600, {1: "one", 2: "two"})
    timers = await reminder(runtime).call("timers")
    assert [(t["id"], t["args"]) for t in timers] == [(timer_id, [{1: "one", 2: "two"}])]
