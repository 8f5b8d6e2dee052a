"""The owner's replay items for relays (cluster/fanout.py): bounded by count, by
bytes and by age, so an owned document that relays served keeps at most
REPLAY_BYTES for them, and nothing once it has been quiet for REPLAY_SECONDS."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from collab.cluster import fanout
from collab.cluster.fanout import EVENT, REPLAY_BYTES, Fanout, ReplayUnavailable


class Wire:
    """Stands in for the Bus: records what would be published."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def actor_channel(self, kind: str, key: str) -> str:
        return f"test:actor:{kind}:{key}"

    def publish(self, channel: str, payload: bytes) -> None:
        self.sent.append(payload)


PEER = SimpleNamespace(node="other", pid="p1")


async def publish(out: Fanout, count: int, size: int) -> None:
    for n in range(count):
        out.add(EVENT, SimpleNamespace(message={"n": n, "pad": "x" * size}), PEER)
        out.flush()


async def test_replay_items_are_bounded_by_bytes():
    wire = Wire()
    out = Fanout(wire, "document", "d", token=3)  # type: ignore[arg-type]
    await publish(out, 3000, 1024)
    assert len(wire.sent) == 3000
    assert REPLAY_BYTES - 2048 < out.kept_bytes <= REPLAY_BYTES
    with pytest.raises(ReplayUnavailable):
        out.replay(1)
    recent = out.replay(2990)
    assert len(recent["items"]) == 11 and recent["t"] == 3


async def test_a_quiet_owner_lets_go_of_its_replay_items(monkeypatch):
    monkeypatch.setattr(fanout, "REPLAY_SECONDS", 0.05)
    out = Fanout(Wire(), "document", "d", token=1)  # type: ignore[arg-type]
    await publish(out, 10, 100)
    assert out.kept_bytes > 1000
    assert len(out.replay(1)["items"]) == 10
    await asyncio.sleep(0.1)
    out.trim()
    assert out.kept_bytes == 0
    with pytest.raises(ReplayUnavailable):
        out.replay(1)
