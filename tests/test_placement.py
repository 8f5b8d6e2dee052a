"""Two actor systems sharing one store and a real Redis, as two processes would:
one owner per actor, requests forwarded to it, ownership moving when a lease is
released or expires, and a former owner's late writes refused (fencing)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from collab.runtime.actions import ActionError, CallAction, InvalidArguments, UnknownAction
from collab.runtime.connections import Connect, Disconnect
from collab.runtime.refs import ActorRef
from collab.storage.base import StaleOwner
from tests.apps.counter import Counter, Lobby, registry
from tests.inproc import Runtime
from tests.tcpproxy import TcpProxy
from tests.waits import until

REDIS_URL = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def key():
    return f"placement-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pair(tmp_path):
    """Nodes A and B on one SQLite file, with short leases."""
    nodes = [Runtime(tmp_path / "shared.db", registry, redis_url=REDIS_URL, lease_ttl=0.6)
             for _ in range(2)]
    for node in nodes:
        await node.start()
    yield nodes
    for node in nodes:
        if not node.committer._closing:
            await node.stop()


def counter(rt: Runtime, key: str) -> ActorRef:
    return ActorRef(rt.system, Counter, key)


async def test_one_owner_and_a_clean_handover(pair, key):
    a, b = pair
    assert await counter(a, key).call("increment") == 1
    assert await counter(b, key).call("increment") == 2  # forwarded to A, the owner
    assert b.system.live(Counter, key) is None and a.system.ownership.forwarder.served == 1
    await a.stop()  # A saves and releases its leases
    assert await counter(b, key).call("increment") == 3
    actor = b.system.live(Counter, key)
    assert actor is not None and actor.fence_token == 2


async def test_an_expired_owner_is_fenced_off(pair, key):
    a, b = pair
    assert await counter(a, key).call("increment") == 1
    await a.system.ownership.placement.stop()  # A stalls: it stops renewing but keeps running

    async def b_took_over() -> bool:
        await counter(b, key).call("get")  # forwarded to A until A's lease expires
        return b.system.live(Counter, key) is not None
    await until(b_took_over)
    assert await counter(b, key).call("increment", 10) == 11
    # A's instance still thinks it owns the actor; its next write is refused.
    with pytest.raises(StaleOwner):
        await counter(a, key).call("increment", 100)
    assert await counter(b, key).call("get") == {"count": 11, "created": 1, "wakes": 2,
                                                 "sleeps": 0}
    assert a.committer.stats.stale >= 1


async def test_forwarded_errors_keep_their_codes(pair, key):
    a, b = pair
    await counter(a, key).call("increment")
    for action, error in [("nosuch", UnknownAction), ("fail_after_change", ActionError)]:
        with pytest.raises(error) as raised:
            await counter(b, key).call(action)
    assert raised.value.code == "refused"
    with pytest.raises(InvalidArguments):
        await counter(b, key).call("increment", 1, 2, 3)
    assert await counter(a, key).call("increment") == 2  # the failures changed nothing


class Socket:
    """A client socket as actors see one (a Peer), recording what reaches it."""

    echo_ack = False

    def __init__(self, name: str) -> None:
        self.id = name
        self.events: list[tuple[str, object]] = []
        self.closed_with: tuple[int, str] | None = None

    @property
    def closed(self) -> bool:
        return self.closed_with is not None

    def send_out(self, out) -> None:
        self.events.append((out.message["name"], out.message["data"]))

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def ask(rt: Runtime, key: str, make):
    reply = asyncio.get_running_loop().create_future()
    rt.system.post(Lobby, key, make(reply))
    async with asyncio.timeout(10):
        return await reply


async def test_a_client_on_another_process_is_relayed_to_the_owner(pair, key):
    """A socket on B connects to an actor A owns: B relays its messages, A's events
    for it cross once per broadcast, and its `self.conn` is that socket."""
    a, b = pair
    here, there = Socket("here"), Socket("there")
    assert await ask(a, key, lambda r: Connect(here, {"name": "ann"}, r))
    assert await ask(b, key, lambda r: Connect(there, {"name": "bob"}, r))
    assert b.system.live(Lobby, key) is None and len(b.system.ownership.relays) == 1
    said = await ask(b, key, lambda r: CallAction("say", ("hi",), {}, r, peer=there))
    assert said == 1
    me = await ask(b, key, lambda r: CallAction("whoami", (), {}, r, peer=there))
    assert me["params"] == {"name": "bob"} and me["state"] == {"name": "bob"}
    await until(lambda: ("said", {"who": "bob", "text": "hi"}) in there.events)
    assert there.events[0] == ("welcome", {"visits": 2})
    assert here.events == [("welcome", {"visits": 1}), ("joined", "bob"),
                           ("said", {"who": "bob", "text": "hi"})]
    # A refusal reaches the relayed socket, which is then not a member.
    with pytest.raises(ActionError) as refused:
        await ask(b, key, lambda r: Connect(Socket("x"), {"name": "banned"}, r))
    assert refused.value.code == "banned"
    await ask(b, key, lambda r: Disconnect(there, r))
    await until(lambda: ("left", "bob") in here.events)
    await until(lambda: len(b.system.ownership.relays) == 0)  # its last socket left
    assert await counter_online(a, key) == ["ann"]


async def counter_online(rt: Runtime, key: str) -> list[str]:
    return await ActorRef(rt.system, Lobby, key).call("online")


async def test_a_relay_fills_a_gap_from_the_owner(pair, key):
    """An item Redis never delivered is fetched again from the owner's recent items."""
    a, b = pair
    here, there = Socket("here"), Socket("there")
    await ask(a, key, lambda r: Connect(here, {"name": "ann"}, r))
    await ask(b, key, lambda r: Connect(there, {"name": "bob"}, r))
    relay = b.system.ownership.relays.get("lobby", key)
    await until(lambda: relay.token is not None)
    relay.next_seq -= 0  # nothing skipped yet
    fanout = a.system.ownership.remote_peers.fanout_for(a.system.live(Lobby, key))
    bus = a.system.ownership.bus
    publish = bus.publish
    dropped = []

    def lossy(channel, payload, **kw):  # loses the next item for the relay
        if channel == fanout.channel and not dropped:
            dropped.append(payload)
            return None
        return publish(channel, payload, **kw)

    bus.publish = lossy
    for text in ("one", "two", "three"):
        await ActorRef(a.system, Lobby, key).call("say", text)
    await until(lambda: [e for e in there.events if e[0] == "said"] == [
        ("said", {"who": "http", "text": t}) for t in ("one", "two", "three")])
    assert dropped and not there.closed


async def test_a_relay_whose_owner_dies_closes_its_sockets(pair, key):
    a, b = pair
    await ask(a, key, lambda r: Connect(Socket("here"), {"name": "ann"}, r))
    there = Socket("there")
    await ask(b, key, lambda r: Connect(there, {"name": "bob"}, r))
    await a.system.ownership.bus.stop()  # A goes silent: nobody listens on its channel
    await until(lambda: there.closed)
    assert there.closed_with[0] == 1012
    assert len(b.system.ownership.relays) == 0


async def test_an_owner_cut_off_from_redis_serves_until_another_takes_over(tmp_path, key):
    """Without Redis an owner keeps its actors (nobody can claim them, and the store
    fences whoever does): nothing is unloaded at once. When a process that reaches
    Redis takes one over, the cut-off owner's next write is refused as stale, which
    stops that actor there; the new owner has every write that was acknowledged."""
    host, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    shared = tmp_path / "cut.db"
    cut = Runtime(shared, registry, redis_url=f"redis://127.0.0.1:{await proxy.start()}/0",
                  lease_ttl=0.6, liveness_ttl=0.6)
    other = Runtime(shared, registry, redis_url=REDIS_URL, lease_ttl=0.6, liveness_ttl=0.6)
    await cut.start()
    await other.start()
    try:
        assert await counter(cut, key).call("increment") == 1
        proxy.cut()
        for n in range(2, 6):  # five lease TTLs without Redis: still served
            await asyncio.sleep(0.6)
            assert await counter(cut, key).call("increment") == n
        assert cut.system.live(Counter, key) is not None
        # The other process finds the lease expired and the owner's heartbeat gone.
        assert await counter(other, key).call("increment") == 6
        with pytest.raises(StaleOwner):
            await counter(cut, key).call("increment")
        await until(lambda: cut.system.live(Counter, key) is None)
        assert await counter(other, key).call("increment") == 7
    finally:
        await cut.stop()
        await other.stop()
