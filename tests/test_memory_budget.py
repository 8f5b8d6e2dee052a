"""COLLAB_MEMORY_BUDGET against a real server process: 5,000 documents opened in turn
under a budget of 100 MiB keep the process near it (well below the same run
without a budget, and within 25% of it),
the least recently used hibernating first; every document stays readable with what
was acknowledged; the estimate and the budget are in /metrics. A document whose
clients are connected unloads its CRDT for the budget instead, and keeps them."""

from __future__ import annotations

import asyncio

from pycrdt import Doc, Text

from collab.protocol import ywire
from tests.test_metrics import scrape, value
from tests.waits import until
from tests.yclient import Editor, YClient

BUDGET = 100 * 1024 * 1024
DOCS = 5000
#: Each document's text past its greeting: enough that 5,000 of them loaded take the
#: process well past the budget (a server at rest is about 52 MiB; with the greeting
#: alone they reached 101 MiB, too near the budget for it to show).
PADDING = "." * 4000


def text_of(n: int) -> str:
    return f"document {n} says hello;{PADDING}"


def update_for(n: int) -> bytes:
    doc = Doc()
    doc.get("body", type=Text).insert(0, text_of(n))
    return doc.get_update()


async def open_in_turn(session, srv) -> float:
    """Write one update to each of DOCS documents, eight writers at a time; the
    server's peak RSS (MiB) meanwhile, sampled every 250 documents."""
    names = iter(range(DOCS))
    peak = 0.0

    async def writer() -> None:
        nonlocal peak
        for n in names:
            resp = await session.post(f"{srv.http_url}/api/docs/budget-{n}/update",
                                      data=update_for(n))
            assert resp.status == 200, await resp.text()
            if n % 250 == 0:
                peak = max(peak, srv.rss_mib())

    await asyncio.gather(*(writer() for _ in range(8)))
    return max(peak, srv.rss_mib())


async def test_5000_documents_opened_in_turn_stay_near_a_100_mib_budget(
        server_factory, session):
    env = {"COLLAB_IDLE_TIMEOUT": "3600"}
    unbounded = await open_in_turn(session, server_factory("unbounded", env=env))
    srv = server_factory("budget", env={**env, "COLLAB_MEMORY_BUDGET": str(BUDGET)})
    peak = await open_in_turn(session, srv)
    # Here (1fca5e4): 121 MiB without a budget, 85 with it. What stays above the budget is
    # what serving the requests took, not actors (bench/budget_bench.py), and varies
    # with the machine: the test asks for the budget's effect and a bound on the rest.
    assert peak <= unbounded - 10, f"{peak:.1f} MiB with the budget, {unbounded:.1f} without"
    assert peak * 1024 * 1024 <= BUDGET * 1.25, f"{peak:.1f} MiB"
    _, values = await scrape(session, srv.http_url)
    assert value(values, "collab_memory_budget_bytes") == BUDGET
    assert value(values, "collab_memory_budget_shed_total") > 0
    assert value(values, "collab_actors_loaded", kind="doc") < DOCS  # the oldest slept
    assert value(values, "collab_actor_memory_bytes", kind="doc") <= BUDGET

    names = iter(range(DOCS))
    wrong = []

    async def reader() -> None:
        for n in names:
            async with session.get(f"{srv.http_url}/api/docs/budget-{n}?format=json"
                                   "&text=body") as resp:
                if (await resp.json())["text"]["body"] != text_of(n):
                    wrong.append(n)

    await asyncio.gather(*(reader() for _ in range(8)))
    assert wrong == []


async def test_a_tiny_budget_unloads_connected_documents_and_closes_nothing(
        server_factory, session):
    """Nothing fits in a budget of 1 byte: a document whose clients are connected
    unloads its CRDT (and keeps them), and loads it again for the next edit."""
    srv = server_factory("tiny", env={"COLLAB_MEMORY_BUDGET": "1",
                                      "COLLAB_IDLE_TIMEOUT": "3600"})
    writer = Editor()
    a = await YClient.connect(session, srv.http_url, "held")
    b = await YClient.connect(session, srv.http_url, "held")
    await a.send(ywire.SyncUpdate(writer.type("one;")))
    await b.recv_until(lambda m: isinstance(m, ywire.SyncUpdate))

    async def unloaded() -> bool:
        _, values = await scrape(session, srv.http_url)
        return value(values, "collab_documents_unloaded_total") >= 1

    await until(unloaded)
    await a.send(ywire.SyncUpdate(writer.type("two;")))  # loads it again, for everyone
    await b.recv_until(lambda m: isinstance(m, ywire.SyncUpdate) and b"two;" in m.update)
    async with session.get(f"{srv.http_url}/api/docs/held?format=json&text=body") as resp:
        assert (await resp.json())["text"]["body"] == "one;two;"
    _, values = await scrape(session, srv.http_url)
    assert value(values, "collab_documents_reloaded_total") >= 1
    assert value(values, "collab_memory_budget_shed_total") >= 1
    for client in (a, b):
        assert not client.ws.closed  # the budget never closes a client
        await client.ws.close()
