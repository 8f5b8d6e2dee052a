"""Application actors in-process on a real SQLite store: durable state, hooks,
actions and their errors, hibernation, restart, and actor-to-actor calls."""

from __future__ import annotations

import pytest

import collab
from collab.protocol.codec import unpack
from collab.runtime.actions import ActionError, InvalidArguments, UnknownAction
from collab.runtime.actor import InternalActionError, StateNotSerializable
from collab.runtime.mailbox import ActorBase
from collab.runtime.refs import ActorRef
from tests.apps.counter import Counter, Tally, registry
from tests.inproc import Runtime
from tests.waits import until


def counter(rt: Runtime, key: str = "c") -> ActorRef:
    return ActorRef(rt.system, Counter, key)


async def test_state_is_committed_before_the_result(runtime):
    assert await counter(runtime).call("increment", 5) == 5
    stored = unpack(await runtime.store.load_actor_state("counter", "c"))
    assert stored["count"] == 5  # already durable when the caller saw 5


async def test_hooks_and_state_survive_hibernation_and_restart(runtime_factory):
    rt = runtime_factory(registry, "h", idle_timeout=0.1)
    system = await rt.start()
    await counter(rt).call("increment")
    await until(lambda: system.loaded_count == 0)  # hibernated
    assert await counter(rt).call("increment", 2) == 3
    await rt.stop()
    await rt.start()
    state = await counter(rt).call("get")
    assert state["count"] == 3
    assert state["created"] == 1  # on_create ran once in the actor's life
    assert state["wakes"] == 3  # first load, after hibernation, after restart
    assert state["sleeps"] == 2  # hibernation and shutdown
    await rt.stop()


async def test_failed_actions_change_nothing(runtime):
    ref = counter(runtime)
    await ref.call("increment")
    with pytest.raises(ActionError) as refused:
        await ref.call("fail_after_change")
    assert refused.value.code == "refused"
    with pytest.raises(InternalActionError):
        await ref.call("crash")
    with pytest.raises(StateNotSerializable):
        await ref.call("store_unserializable")
    state = await ref.call("get")
    assert state["count"] == 1 and "bad" not in state


@pytest.mark.parametrize(
    ("action", "args", "kwargs", "error"),
    [
        ("nope", (), {}, UnknownAction),
        ("not_an_action", (), {}, UnknownAction),
        ("_persist", (), {}, UnknownAction),
        ("increment", (1, 2), {}, InvalidArguments),
        ("increment", (), {"step": 1}, InvalidArguments),
    ],
)
async def test_bad_calls_are_the_callers_error(runtime, action, args, kwargs, error):
    with pytest.raises(error):
        await counter(runtime).call(action, *args, **kwargs)
    assert await counter(runtime).call("increment") == 1  # the actor keeps working


async def test_actor_to_actor_calls(runtime):
    tally = ActorRef(runtime.system, Tally, "t")
    assert await tally.call("add_to", ["a", "b"], 3) == 6
    assert await counter(runtime, "a").call("increment") == 4
    ref_by_name = ActorRef(runtime.system, "counter", "b")
    assert (await ref_by_name.call("get"))["count"] == 3


async def test_calling_yourself_through_a_reference_is_refused(runtime):
    with pytest.raises(ActionError) as info:
        await counter(runtime).call("call_myself")
    assert info.value.code == "self_call"


async def test_kind_names():
    assert Counter.kind == "counter" and Tally.kind == "tally"
    with pytest.raises(ValueError):
        type("Bad", (Counter,), {"kind": "Has Spaces"})
    assert issubclass(Counter, ActorBase)


class Notes(collab.Actor):
    """Actions named like the mailbox's own hooks, which are underscored."""

    kind = "notes"

    def initial_state(self) -> dict:
        return {"text": ""}

    @collab.action
    def save(self, text: str) -> None:
        self.state["text"] = text

    @collab.action
    def load(self) -> str:
        return self.state["text"]


async def test_actions_named_save_and_load_survive_hibernation_and_restart(runtime_factory):
    rt = runtime_factory(collab.Registry(Notes), "notes", idle_timeout=0.1)
    system = await rt.start()
    await ActorRef(system, Notes, "n").call("save", "kept")
    await until(lambda: system.loaded_count == 0)  # hibernated through the mailbox's _save
    assert await ActorRef(system, Notes, "n").call("load") == "kept"
    await rt.stop()
    system = await rt.start()
    assert await ActorRef(system, Notes, "n").call("load") == "kept"
