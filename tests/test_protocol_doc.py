"""docs/protocol.md's examples, replayed against a real server: a minimal client that
knows only what the document shows. Hex blocks are compared byte for byte;
transcript lines as JSON values, with "*" matching anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.waits import TIMEOUT

DOC = Path(__file__).parent.parent / "docs" / "protocol.md"
BLOCK = re.compile(r"```(hex|transcript)\n(.*?)```", re.S)
LINE = re.compile(r"([A-Z]?)([<>]) (.*)")
APP = ("--app", "tests.apps.counter:registry")


def examples() -> list[tuple[str, list[tuple[str, str, str]]]]:
    found = []
    for kind, body in BLOCK.findall(DOC.read_text()):
        steps = []
        for line in body.strip().splitlines():
            match = LINE.fullmatch(line)
            assert match, f"protocol.md: cannot read example line {line!r}"
            client, direction, payload = match.groups()
            steps.append((client or "A", direction, payload))
        found.append((kind, steps))
    return found


def matches(expected, actual) -> bool:
    if expected == "*":
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() \
            and all(matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) \
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
    return expected == actual


EXAMPLES = examples()


def test_the_document_has_examples():
    kinds = [kind for kind, _ in EXAMPLES]
    assert kinds.count("hex") >= 2 and kinds.count("transcript") >= 3


@pytest.mark.parametrize(("kind", "steps"), EXAMPLES,
                         ids=[f"{kind}-{i}" for i, (kind, _) in enumerate(EXAMPLES)])
async def test_example(kind, steps, server_factory, session):
    srv = server_factory(args=APP)
    sockets: dict[str, aiohttp.ClientWebSocketResponse] = {}
    try:
        for number, (client, direction, payload) in enumerate(steps, 1):
            if client not in sockets:
                sockets[client] = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws")
            ws = sockets[client]
            if direction == ">":
                if kind == "hex":
                    await ws.send_bytes(bytes.fromhex(payload))
                else:
                    await ws.send_str(payload)
                continue
            msg = await ws.receive(timeout=TIMEOUT)
            where = f"step {number} ({client}{direction} {payload[:60]})"
            if kind == "hex":
                assert msg.type is aiohttp.WSMsgType.BINARY, where
                assert msg.data.hex(" ") == payload, where
            else:
                assert msg.type is aiohttp.WSMsgType.TEXT, where
                assert matches(json.loads(payload), json.loads(msg.data)), \
                    f"{where}: got {msg.data}"
    finally:
        for ws in sockets.values():
            await ws.close()
