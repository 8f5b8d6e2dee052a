"""Random and mutated frames against a live server: every bad frame closes only its
sender with a protocol close code, never a crash, and the document stays intact."""

from __future__ import annotations

import random

import aiohttp
import pytest

from collab.protocol import ywire
from collab.protocol.ywire import SyncUpdate
from tests.serverproc import ServerProcess
from tests.yclient import Editor, YClient

ROUNDS = 150
PROTOCOL_CLOSE_CODES = {1002, 1003, 1007, 1009}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("fuzz") / "collab.db").start()
    yield proc
    proc.stop()


def frames(seed: int) -> list[bytes]:
    """Arbitrary bytes, and valid messages with a few bytes flipped, cut or inserted."""
    rng = random.Random(seed)
    editor = Editor()
    valid = [ywire.encode_update(editor.type("abc")), ywire.serialize(ywire.SyncStep1(b"\x00")),
             b"\x01" + ywire.write_var_bytes(ywire.encode_awareness(
                 [ywire.AwarenessEntry(7, 1, '{"a":1}')]))]
    out = []
    for _ in range(ROUNDS):
        if rng.random() < 0.4:
            out.append(rng.randbytes(rng.randint(0, 40)))
            continue
        buf = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(buf) + 1)
            op = rng.choice(("flip", "cut", "insert"))
            if op == "flip" and i < len(buf):
                buf[i] = rng.randrange(256)
            elif op == "cut":
                del buf[i:]
            else:
                buf.insert(i, rng.randrange(256))
        out.append(bytes(buf))
    return out


async def test_fuzzed_frames_never_hurt_others(srv):
    async with aiohttp.ClientSession() as session:
        witness = await YClient.connect(session, srv.http_url, "fuzz")
        await witness.recv()
        witness_editor = Editor()
        closes: dict[int, int] = {}
        for n, frame in enumerate(frames(seed=2026)):
            fuzzer = await YClient.connect(session, srv.http_url, "fuzz")
            await fuzzer.recv()
            await fuzzer.ws.send_bytes(frame)
            # A frame that happened to be valid is answered or ignored; the socket stays
            # open, so closing it ourselves ends the round. An invalid one is closed by
            # the server with a protocol code.
            await fuzzer.send(ywire.QueryAwareness())
            try:
                await fuzzer.recv_until(lambda m: isinstance(m, ywire.AwarenessMessage))
                await fuzzer.ws.close()
            except ConnectionError:
                code = fuzzer.ws.close_code
                assert code in PROTOCOL_CLOSE_CODES, f"frame {n} {frame!r}: close {code}"
                closes[code] = closes.get(code, 0) + 1
            # The document and its other client are unaffected.
            marker = f"<{n}>".encode()
            await witness.send(SyncUpdate(witness_editor.type(marker.decode())))
            await witness.recv_until(lambda m, k=marker: isinstance(m, SyncUpdate)
                                     and k in m.update)
        assert sum(closes.values()) > ROUNDS // 3, closes
        resp = await session.get(f"{srv.http_url}/api/docs/fuzz?format=json&text=body")
        body = (await resp.json())["text"]["body"]
        assert all(f"<{n}>" in body for n in range(ROUNDS))
        assert (await session.get(f"{srv.http_url}/healthz")).status == 200
