"""The actor runtime without a server: mailbox order, lifecycle table, hibernation,
and a successor that waits for its predecessor's save."""

from __future__ import annotations

import asyncio

import pytest

from collab.runtime.lifecycle import ActorState, IllegalTransition, check_transition
from collab.runtime.mailbox import ActorBase, Stop
from tests.waits import until


class Recorder(ActorBase):
    kind = "recorder"
    events: list[tuple[str, str]] = []

    async def _load(self) -> None:
        self.events.append(("load", self.key))
        await asyncio.sleep(0.01)
        self.busy = False

    def handle(self, message):
        if message == "slow":
            async def work():
                self.events.append(("slow-start", self.key))
                await asyncio.sleep(0.02)
                self.events.append(("slow-end", self.key))
            return work()
        self.events.append((message, self.key))
        return None

    def _can_hibernate(self) -> bool:
        return True

    async def _save(self, reason: str) -> None:
        self.events.append((f"save:{reason}", self.key))
        await asyncio.sleep(0.05)


@pytest.fixture
async def system(runtime_factory):
    Recorder.events = []
    return await runtime_factory(None, "rt", idle_timeout=0.1).start()


def test_lifecycle_table():
    assert check_transition("a", ActorState.LOADING, ActorState.LIVE) is ActorState.LIVE
    with pytest.raises(IllegalTransition, match="a: cannot go from stopped to live"):
        check_transition("a", ActorState.STOPPED, ActorState.LIVE)
    with pytest.raises(IllegalTransition):
        check_transition("a", ActorState.LIVE, ActorState.LOADING)


async def test_messages_wait_for_load_and_run_one_at_a_time(system):
    actor = system.get(Recorder, "k")
    for message in ["a", "slow", "b"]:
        system.post(Recorder, "k", message)
    assert system.get(Recorder, "k") is actor and system.loads == 1
    await until(lambda: ("b", "k") in Recorder.events)
    assert [e for e, _ in Recorder.events] == ["load", "a", "slow-start", "slow-end", "b"]


async def test_idle_actor_hibernates_and_successor_waits_for_save(system):
    first = system.get(Recorder, "k")
    await until(lambda: first.lifecycle is ActorState.DRAINING)
    # A request during the save gets a new instance, which loads only after the save.
    second = system.post(Recorder, "k", "hello")
    assert second is not first
    await until(lambda: ("hello", "k") in Recorder.events)
    names = [e for e, _ in Recorder.events]
    assert names == ["load", "save:idle", "load", "hello"]
    assert first.lifecycle is ActorState.STOPPED
    await system.stop_all()
    assert system.loaded_count == 0


async def test_stop_all_saves_everyone(system):
    for key in "abc":
        system.post(Recorder, key, "x")
    await system.stop_all()
    assert sorted(k for e, k in Recorder.events if e == "save:shutdown") == ["a", "b", "c"]
    assert system.loaded_count == 0


async def test_post_to_stopped_actor_is_refused(system):
    actor = system.get(Recorder, "k")
    actor.post(Stop("shutdown"))
    await actor.wait_stopped()
    assert actor.post("late") is False


class Growing(Recorder):
    """An actor whose estimate grows with every message it handles."""

    kind = "growing"

    def memory_estimate(self) -> int:
        return 1000 + 10 * sum(1 for _, key in self.events if key == self.key)


async def test_the_budget_keeps_its_total_as_actors_load_handle_and_stop(runtime_factory):
    Recorder.events = []
    system = await runtime_factory(None, "budget", idle_timeout=3600,
                                   memory_budget=1 << 40).start()
    budget = system.budget

    def total() -> int:
        return sum(actor.memory_estimate() for actor in system.loaded())

    for key in "abc":
        system.post(Growing, key, "x")
    await until(lambda: len(Recorder.events) == 6)  # a load and an "x" each
    assert budget.estimated == total() == 3 * (1000 + 20)
    system.post(Growing, "a", "y")
    await until(lambda: len(Recorder.events) == 7)
    assert budget.estimated == total() == 3 * 1020 + 10
    system.get(Growing, "b").post(Stop("idle"))
    await until(lambda: system.loaded_count == 2)
    assert budget.estimated == total() == 1030 + 1020
    await system.stop_all()
    assert budget.estimated == 0
