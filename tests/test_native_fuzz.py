"""The native protocol's decoder and endpoint against arbitrary and mutated input:
the decoder only ever raises MalformedMessage; the live endpoint answers every bad
frame with an error and keeps the socket, its subscription and the document."""

from __future__ import annotations

import itertools
import json
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab.protocol import native
from tests.nclient import NativeError, NClient
from tests.yclient import Editor

VALID = [
    {"id": 1, "op": "ping"},
    {"id": 2, "op": "doc.subscribe", "doc": "fuzz", "sv": b"\x00"},
    {"id": 3, "op": "doc.update", "doc": "fuzz", "update": Editor().type("abc")},
    {"id": 4, "op": "actor.call", "actor": "room", "key": "r", "action": "history",
     "kwargs": {"limit": 5}},
]


@settings(max_examples=400)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_decode_never_fails_otherwise(data):
    try:
        message = native.decode(data)
    except native.MalformedMessage:
        return
    assert isinstance(message, dict) and isinstance(message["op"], str)


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.data())
def test_mutated_msgpack_messages(message, data):
    raw = bytearray(msgpack.packb(message))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    try:
        native.decode(bytes(raw))
    except native.MalformedMessage:
        pass


def mutated_frames(seed: int, count: int) -> list[bytes | str]:
    rng = random.Random(seed)
    out: list[bytes | str] = []
    for _ in range(count):
        message = rng.choice(VALID)
        if rng.random() < 0.3:
            out.append(rng.randbytes(rng.randint(0, 60)))
        elif rng.random() < 0.5:
            raw = bytearray(msgpack.packb(message))
            for _ in range(rng.randint(1, 3)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            out.append(bytes(raw))
        else:
            text = json.dumps({k: v for k, v in message.items() if not isinstance(v, bytes)})
            cut = rng.randrange(len(text))
            out.append(text[:cut] + rng.choice(['"', "}", "x", "\\", "[", ""]) + text[cut:])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_live_endpoint_survives_garbage(server, session, seed):
    victim = await NClient.connect(session, server.http_url)
    victim.ids = itertools.count(10**9)  # ids a mutated frame cannot plausibly reuse
    bystander = await NClient.connect(session, server.http_url)
    for client in (victim, bystander):
        await client.request("doc.subscribe", doc="fuzz-live")
    editor = Editor()
    await victim.request("doc.update", doc="fuzz-live", update=editor.type("before"))
    for frame in mutated_frames(seed, 150):
        await victim.send_raw(frame)
    assert await victim.request("ping") is None
    for answer in victim.orphans:  # a mutation may also leave a valid request
        assert answer["ok"] is True or answer["error"]["code"]
    assert any(answer["ok"] is False for answer in victim.orphans)
    saved = await victim.request("doc.update", doc="fuzz-live", update=editor.type(" after"))
    assert saved["seq"] >= 2
    await bystander.wait_for(lambda: any(
        e["event"] == "doc.update" and b"after" in e["update"] for e in bystander.events))
    for client in (victim, bystander):
        await client.close()


async def test_oversized_frame_closes_only_its_socket(server_factory, session):
    srv = server_factory("small", env={"COLLAB_MAX_MESSAGE_BYTES": "65536"})
    big = await NClient.connect(session, srv.http_url)
    other = await NClient.connect(session, srv.http_url)
    await other.request("doc.subscribe", doc="big")
    await big.send_raw(msgpack.packb({"id": 1, "op": "ping", "pad": b"x" * 100_000}))
    await big.wait_for(lambda: big.ws.closed)
    assert big.ws.close_code == 1009
    assert await other.request("ping") is None
    with pytest.raises(NativeError):
        await other.request("doc.update", doc="never-subscribed", update=b"\x00\x00")
    await other.close()
