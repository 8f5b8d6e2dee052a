"""pycrdt clients (pycrdt's own `Provider`) against a real server, alone and with a Node client.

pycrdt-websocket 0.16 ships servers only; the client side is `pycrdt.Provider`
over a `pycrdt.Channel`. `AiohttpChannel` below is that channel for an aiohttp
client WebSocket. `Provider` handles sync messages only, so the channel also
feeds awareness frames into a `pycrdt.Awareness`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from pycrdt import (
    Array,
    Awareness,
    Channel,
    Doc,
    Map,
    Provider,
    Text,
    YMessageType,
    create_awareness_message,
    read_message,
)

from tests.serverproc import TIMEOUT
from tests.test_interop_node import (
    JS_DIR,
    SCRIPT_TIMEOUT_MS,
    SUBPROCESS_TIMEOUT,
    decode_state_vector,
    require_node,
    server_content,
)

QUERY_AWARENESS = bytes([3])


class AiohttpChannel(Channel):
    """A pycrdt Channel over an aiohttp client WebSocket.

    Iteration yields sync frames for the Provider and ends when the socket
    closes; awareness frames are applied to `awareness` instead.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, path: str, awareness: Awareness):
        self._ws = ws
        self._path = path
        self._send_lock = asyncio.Lock()
        self.awareness = awareness
        self.close_code: int | None = None

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> AiohttpChannel:
        return self

    async def __anext__(self) -> bytes:
        while True:
            msg = await self._ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                data = bytes(msg.data)
                if data[0] == YMessageType.AWARENESS:
                    self.awareness.apply_awareness_update(read_message(data[1:]), "remote")
                    continue
                return data
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                self.close_code = self._ws.close_code
                raise StopAsyncIteration
            raise ConnectionError(f"unexpected frame {msg.type!r}: {msg.data!r}")

    async def recv(self) -> bytes:
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise ConnectionError("WebSocket closed") from None

    async def send(self, message: bytes) -> None:
        async with self._send_lock:
            await self._ws.send_bytes(message)


class PyClient:
    def __init__(self, name: str, doc: Doc, provider: Provider, channel: AiohttpChannel):
        self.name = name
        self.doc = doc
        self.provider = provider
        self.channel = channel
        self.awareness = channel.awareness
        self.text = doc.get("body", type=Text)
        self.meta = doc.get("meta", type=Map)
        self.items = doc.get("items", type=Array)

    def peer_names(self) -> list[str]:
        return sorted(
            state["user"]["name"]
            for state in self.awareness.states.values()
            if isinstance(state, dict) and "user" in state
        )

    async def announce(self, **fields) -> None:
        """Change the local awareness state and send it (Provider does not)."""
        for key, value in fields.items():
            self.awareness.set_local_state_field(key, value)
        update = self.awareness.encode_awareness_update([self.awareness.client_id])
        await self.channel.send(create_awareness_message(update))

    def content(self) -> dict:
        return {
            "text": str(self.text),
            "meta": self.meta.to_py(),
            "items": self.items.to_py(),
            "stateVector": decode_state_vector(self.doc.get_state()),
        }


@asynccontextmanager
async def pycrdt_client(
    session: aiohttp.ClientSession, ws_url: str, doc_name: str, name: str
) -> AsyncIterator[PyClient]:
    """Connect a pycrdt Provider, announce `name` in awareness, wait until synced."""
    ws = await session.ws_connect(f"{ws_url}/{doc_name}")
    try:
        doc = Doc()
        awareness = Awareness(doc)
        channel = AiohttpChannel(ws, doc_name, awareness)
        async with Provider(doc, channel) as provider:
            client = PyClient(name, doc, provider, channel)
            await client.announce(user={"name": name, "color": "#00aa55"})
            await channel.send(QUERY_AWARENESS)
            async with asyncio.timeout(TIMEOUT):
                await provider.synced.wait()
            yield client
    finally:
        await ws.close()


async def until(predicate: Callable[[], bool], what: str, also: Callable[[], None] = lambda: None):
    """Poll `predicate` until true, within TIMEOUT; `also` may raise to stop early."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while not predicate():
                also()
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {TIMEOUT}s waiting for {what}") from None


def boundaries(text: str) -> list[int]:
    """Indexes where a `word;` may be inserted without splitting another word."""
    return [0] + [i + 1 for i, char in enumerate(text) if char == ";"]


def has_word(text: str, word: str) -> bool:
    return text.startswith(word) or f";{word}" in text


async def write_words(client: PyClient, prefix: str, count: int, rng: random.Random) -> None:
    for i in range(count):
        word = f"{prefix}{i};"
        index = rng.choice(boundaries(str(client.text)))
        client.text.insert(index, word)
        with client.doc.transaction():
            client.meta[f"{client.name}:{i}"] = i
            client.items.append(word)
        await asyncio.sleep(rng.uniform(0.002, 0.005))  # pacing, so edits interleave


async def test_two_pycrdt_providers_converge(server):
    doc = "interop/pycrdt-pair"
    async with aiohttp.ClientSession() as session:
        async with (
            pycrdt_client(session, server.ws_url, doc, "py-a") as a,
            pycrdt_client(session, server.ws_url, doc, "py-b") as b,
        ):
            await until(lambda: a.peer_names() == b.peer_names() == ["py-a", "py-b"],
                        "each client to see the other's awareness")
            await asyncio.gather(
                write_words(a, "a", 30, random.Random(1)),
                write_words(b, "b", 30, random.Random(2)),
            )
            a.meta["done:a"] = True
            b.meta["done:b"] = True
            await until(lambda: "done:b" in a.meta and "done:a" in b.meta,
                        "each client to see the other's last edit")
            final_a, final_b = a.content(), b.content()
            assert a.channel.close_code is None and b.channel.close_code is None

    assert final_a == final_b
    words = sorted(final_a["text"].rstrip(";").split(";"))
    assert words == sorted([f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)])
    assert sorted(final_a["items"]) == sorted(f"{w};" for w in words)
    assert len(final_a["meta"]) == 62
    server_view = server_content(server.http_url, doc)
    del server_view["textSha256"]
    assert server_view == final_a


@pytest.fixture
def node_client() -> str:
    return require_node()


async def test_pycrdt_and_node_edit_one_text_concurrently(server, node_client):
    doc = "interop/pycrdt-node"
    proc = await asyncio.create_subprocess_exec(
        node_client, str(JS_DIR / "writer_reader.mjs"),
        "--url", server.ws_url, "--doc", doc, "--name", "node-writer", "--peer", "py-writer",
        "--count", "25", "--done", "node-done", "--wait-for", "py-done",
        "--timeout-ms", str(SCRIPT_TIMEOUT_MS),
        cwd=JS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    node_run = asyncio.create_task(proc.communicate())

    def node_still_running() -> None:
        if node_run.done():
            out, err = node_run.result()
            raise AssertionError(f"writer_reader.mjs ended early:\n{out.decode()}\n{err.decode()}")

    try:
        async with aiohttp.ClientSession() as session:
            async with pycrdt_client(session, server.ws_url, doc, "py-writer") as py:
                await until(lambda: "node-writer" in py.peer_names(), "the Node client's awareness",
                            node_still_running)
                rng = random.Random(3)
                for i in range(25):
                    word = f"p{i};"
                    py.text.insert(rng.choice(boundaries(str(py.text))), word)
                    await py.announce(cursor={"index": i})
                    await asyncio.sleep(rng.uniform(0.002, 0.005))  # pacing, so edits interleave
                py.text.insert(len(py.text), "py-done;")
                await until(lambda: has_word(str(py.text), "node-done;"),
                            "the Node client's last word", node_still_running)
                final = py.content()
                assert py.channel.close_code is None
        out, err = await asyncio.wait_for(node_run, SUBPROCESS_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    lines = out.decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), f"{out.decode()}\n{err.decode()}"
    assert result["text"] == final["text"]
    assert result["stateVector"] == final["stateVector"]
    assert result["peersSeen"] == ["node-writer", "py-writer"]
    assert result["serverCloses"] == []
    words = sorted(final["text"].rstrip(";").split(";"))
    expected = [f"n{i}" for i in range(25)] + [f"p{i}" for i in range(25)]
    assert words == sorted([*expected, "node-done", "py-done"])
    assert server_content(server.http_url, doc)["text"] == final["text"]
