"""The Document actor in-process against corrupt Yjs updates: an update applies
fully (doc state as pycrdt would have it, one more log row) or not at all (doc
byte-identical, nothing stored, the caller told InvalidPayload). Never a partial
apply, and the actor keeps answering."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pycrdt import Doc

from collab.actors.document import ApplyUpdate, Document, Read
from collab.actors.ydoc import EMPTY_UPDATE
from collab.errors import InvalidPayload
from collab.runtime.registry import Registry
from collab.runtime.system import ActorSystem
from tests.inproc import Runtime
from tests.test_fuzz_decoders import PANIC_UPDATE, is_refusal, mutate, real_update
from tests.waits import TIMEOUT

#: Each example loads a fresh document from SQLite and commits at most one row.
EXAMPLES = 120
#: Seconds to wait for an in-process actor that should answer at once; short so
#: that a dead actor fails the test instead of stalling it for the suite's TIMEOUT.
ANSWER_TIMEOUT = 2.0

BASE = real_update("base")
UPDATES = [real_update(), real_update("second", client_id=77), EMPTY_UPDATE]


class Harness:
    """One actor system on its own event loop, driven from synchronous hypothesis tests."""

    def __init__(self, path) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime = Runtime(path, Registry(Document))
        self.system: ActorSystem = self.run(self.runtime.start())
        self.keys = itertools.count()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.runtime.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("fuzz-actors") / "doc.db")
    yield h
    h.close()


async def ask(system: ActorSystem, key: str, make):
    reply = asyncio.get_running_loop().create_future()
    system.post(Document, key, make(reply))
    return await asyncio.wait_for(reply, ANSWER_TIMEOUT)


async def snapshot(system: ActorSystem, key: str) -> tuple:
    """The document as the actor holds it and as the store holds it."""
    doc = await ask(system, key, lambda r: Read(lambda d: (d.get_state(), d.get_update()), r))
    await system.committer.flush()
    stored = await system.store.load_document(key)
    return doc, stored.snapshot, list(stored.updates)


def expected_after(update: bytes) -> tuple[bytes, bytes] | None:
    """What pycrdt makes of BASE + `update` on a scratch doc: (state, update), or
    None if it refuses it."""
    doc = Doc()
    doc.apply_update(BASE)
    try:
        doc.apply_update(update)
    except BaseException as exc:
        assert is_refusal(exc), exc
        return None
    return doc.get_state(), doc.get_update()


async def apply_and_check(system: ActorSystem, key: str, update: bytes) -> bool:
    """Apply `update` to a document holding BASE; assert all-or-nothing. Returns
    whether it was applied."""
    await ask(system, key, lambda r: ApplyUpdate(BASE, r))
    before = await snapshot(system, key)
    expected = expected_after(update)
    try:
        seq = await ask(system, key, lambda r: ApplyUpdate(update, r))
    except InvalidPayload:
        assert expected is None, "the actor refused what pycrdt accepts"
        assert await snapshot(system, key) == before  # nothing applied, nothing stored
        return False
    assert expected is not None, "the actor accepted what pycrdt refuses"
    doc, snap, rows = await snapshot(system, key)
    assert doc == expected
    assert snap == before[1]
    if update == EMPTY_UPDATE:
        assert (seq, rows) == (len(before[2]), before[2])
    else:
        assert rows == [*before[2], (seq, update)]
    return True


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(UPDATES), st.data())
def test_mutated_update_applies_fully_or_not_at_all(harness, update, data):
    corrupt = mutate(data.draw, update)
    if _panics(corrupt):
        return  # the scratch copy cannot model it: test_update_that_panics_pycrdt_is_refused
    key = f"fuzz-{next(harness.keys)}"
    event("applied" if harness.run(apply_and_check(harness.system, key, corrupt))
          else "refused")


def _panics(update: bytes) -> bool:
    doc = Doc()
    doc.apply_update(BASE)
    try:
        doc.apply_update(update)
    except BaseException as exc:
        return type(exc).__name__ == "PanicException"
    return False


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=48))
def test_arbitrary_bytes_as_update(harness, update):
    if _panics(update):
        return
    key = f"bytes-{next(harness.keys)}"
    harness.run(apply_and_check(harness.system, key, update))


def test_refusals_leave_the_actor_serving(harness):
    """After a run of refused updates the same document still takes a valid one."""
    async def run() -> None:
        key = "serving"
        for cut in range(1, len(BASE) - 1, 3):
            await apply_and_check(harness.system, key, BASE[:cut] + b"\xff")
        assert await apply_and_check(harness.system, key, real_update("valid", 99))

    harness.run(run())


async def test_update_that_panics_pycrdt_is_refused(tmp_path):
    runtime = Runtime(tmp_path / "panic.db", Registry(Document))
    system = await runtime.start()
    await ask(system, "p", lambda r: ApplyUpdate(BASE, r))
    actor = system.live(Document, "p")
    try:
        with pytest.raises(InvalidPayload):
            await ask(system, "p", lambda r: ApplyUpdate(PANIC_UPDATE, r))
        state = await ask(system, "p", lambda r: Read(lambda d: d.get_state(), r))
        assert state == expected_after(b"\x00\x00")[0]
    finally:
        try:
            await asyncio.wait_for(system.stop_all(), ANSWER_TIMEOUT)
        except TimeoutError:
            pass  # the dead actor never reports stopped
        task = actor._task
        if task.done() and not task.cancelled():
            task.exception()  # seen here, so it is not reported again at exit
        await asyncio.wait_for(runtime.committer.close(), TIMEOUT)
        await runtime.store.close()
