"""Actor leases in a real Redis (COLLAB_TEST_REDIS_URL): one owner at a time, tokens
that only grow, renewal, release, expiry and a race of many nodes."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from redis.asyncio import Redis

from collab.cluster.client import namespace
from collab.cluster.leases import FENCE_TTL_MS, HeldElsewhere, Lease, Leases
from tests.waits import until

REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # CI has Redis: a missing one is a failure, not a skip
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
async def kind(redis):
    """An actor kind of this test's own, its keys deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    keys = [k async for k in redis.scan_iter(match=f"collab:*{{{name}:*")]
    if keys:
        await redis.delete(*keys)


async def test_one_owner_and_growing_tokens(redis, kind):
    a, b = Leases(redis, "node-a"), Leases(redis, "node-b")
    first = await a.acquire(kind, "doc-1")
    assert first == Lease(kind, "doc-1", "node-a", 1)
    assert await b.acquire(kind, "doc-1") == HeldElsewhere("node-a", 1)
    assert await a.acquire(kind, "doc-1") == first  # owning it again renews it
    assert await b.owner(kind, "doc-1") == HeldElsewhere("node-a", 1)
    assert await a.release(first)
    assert not await a.release(first)  # not ours any more
    second = await b.acquire(kind, "doc-1")
    assert isinstance(second, Lease) and second.token == 2
    assert await a.acquire(kind, "doc-2") == Lease(kind, "doc-2", "node-a", 1)


async def test_tokens_stay_above_the_store_after_redis_lost_its_counters(redis, kind):
    """Redis restarted without its data counts from 1 again; the floor (the store's
    last token) keeps a new owner's token above any write the store accepted."""
    a = Leases(redis, "node-a")
    lease = await a.acquire(kind, "doc", floor=0)
    assert lease.token == 1
    await a.release(lease)
    await redis.delete(*a._keys(kind, "doc"))  # what a restart does
    again = await a.acquire(kind, "doc", floor=7)
    assert again.token == 8
    await a.release(again)
    assert (await a.acquire(kind, "doc", floor=7)).token == 9  # counting goes on from there


async def test_renewal_keeps_and_expiry_moves_ownership(redis, kind):
    a, b = Leases(redis, "node-a", ttl=0.3), Leases(redis, "node-b", ttl=0.3)
    kept, dropped = await a.acquire(kind, "kept"), await a.acquire(kind, "dropped")
    for _ in range(4):  # renew only one, over more than a TTL
        assert await a.renew([kept]) == []
        await asyncio.sleep(0.1)
    assert isinstance(await b.acquire(kind, "kept"), HeldElsewhere)

    async def taken() -> bool:
        return isinstance(await b.acquire(kind, "dropped"), Lease)
    await until(taken)
    assert (await b.owner(kind, "dropped")).token == dropped.token + 1
    assert await a.renew([kept, dropped]) == [dropped]  # a learns it lost it


async def test_a_race_of_nodes_has_one_winner(redis, kind):
    nodes = [Leases(redis, f"node-{i}") for i in range(20)]
    results = await asyncio.gather(*(n.acquire(kind, "contended") for n in nodes))
    winners = [r for r in results if isinstance(r, Lease)]
    assert len(winners) == 1
    assert all(r == HeldElsewhere(winners[0].node, winners[0].token)
               for r in results if not isinstance(r, Lease))


def test_node_ids_cannot_contain_the_separator():
    with pytest.raises(ValueError):
        Leases(None, "a:b")  # type: ignore[arg-type]


def test_the_namespace_names_the_database_and_the_prefix():
    assert namespace("redis://127.0.0.1:6379/0") == "collab"
    assert namespace("redis://127.0.0.1:6379") == "collab"
    assert namespace("redis://127.0.0.1:6379/3") == "collab:db3"
    assert namespace("rediss://:pw@host:6380?db=2", "app") == "app:db2"


async def test_leases_of_two_namespaces_are_apart(redis):
    name = f"ns-{uuid.uuid4().hex[:8]}"
    here, there = Leases(redis, "node-a"), Leases(redis, "node-b", namespace="elsewhere")
    assert isinstance(await here.acquire("doc", name), Lease)
    assert isinstance(await there.acquire("doc", name), Lease)  # not held by node-a
    assert await redis.exists(f"elsewhere:lease:{{doc:{name}}}")


async def test_fence_counters_of_actors_nobody_owns_expire(redis, kind):
    """A counter lives FENCE_TTL_MS after its actor was last acquired or renewed, so
    counters of actors nobody owns any more do not pile up in Redis."""
    a = Leases(redis, "node-a")
    lease = await a.acquire(kind, "doc")
    fence_key = a._keys(kind, "doc")[1]
    assert 0 < await redis.pttl(fence_key) <= FENCE_TTL_MS
    await redis.pexpire(fence_key, 1000)
    assert await a.renew([lease]) == []
    assert await redis.pttl(fence_key) > 1000  # renewing keeps it
    await a.release(lease)
