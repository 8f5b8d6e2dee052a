"""The Document actor in-process, on a real SQLite store: what shutdown owes callers."""

from __future__ import annotations

import asyncio

import pytest

from collab.actors.document import ApplyUpdate, Document, Read
from collab.errors import ShuttingDown
from collab.runtime.system import ActorSystem
from tests.waits import TIMEOUT, until
from tests.yclient import Editor


@pytest.fixture
async def system(runtime_factory):
    return await runtime_factory(None, "doc").start()


def ask(system: ActorSystem, make) -> asyncio.Future:
    reply = asyncio.get_running_loop().create_future()
    system.post(Document, "d", make(reply))
    return reply


async def test_updates_in_flight_at_shutdown_are_answered(system):
    """A commit that completes while the actor is draining still answers its caller."""
    editor = Editor()
    updates = [editor.type(f"<{i}>") for i in range(20)]
    replies = [ask(system, lambda r, u=update: ApplyUpdate(u, r)) for update in updates]
    await asyncio.sleep(0)  # let the actor load and apply, but not see the commits
    await system.stop_all()
    seqs = await asyncio.wait_for(asyncio.gather(*replies), TIMEOUT)
    assert sorted(seqs) == list(range(1, 21))
    stored = await system.store.load_document("d")
    # Stored on the way out, as log rows: a shutdown leaves compacting to the next load.
    assert stored.snapshot is None and [seq for seq, _ in stored.updates] == sorted(seqs)


async def test_no_actor_is_created_after_shutdown_begins(system):
    await system.stop_all()
    with pytest.raises(ShuttingDown):
        ask(system, lambda r: Read(lambda doc: None, r))


async def test_a_live_document_compacts_every_time_its_log_grows(runtime_factory):
    """The compaction timer can be armed again once it fired: a document that stays
    loaded folds its log each time it passes the threshold, not only the first."""
    system = await runtime_factory(None, "doc", compact_rows=5, compact_delay=0.0).start()
    editor = Editor()
    for round_ in range(1, 4):
        for i in range(6):
            update = editor.type(f"<{round_}.{i}>")
            await ask(system, lambda r, u=update: ApplyUpdate(u, r))
        await until(lambda n=round_: system.compactions >= n)
    assert system.compactions >= 3
