"""A native-protocol (`/ws`) test client over aiohttp: requests matched to responses
by id, events collected in order. msgpack by default, JSON with `json=True`."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import msgpack

from tests.waits import TIMEOUT


class NativeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, json_mode: bool) -> None:
        self.ws = ws
        self.json = json_mode
        self.ids = itertools.count(1)
        self.pending: dict[Any, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.orphans: list[dict[str, Any]] = []  # answers with no (known) id
        self.frames: list[aiohttp.WSMsgType] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, http_url: str, *,
                      json: bool = False, token: str | None = None) -> NClient:
        query = f"?token={token}" if token else ""
        ws = await session.ws_connect(http_url.replace("http", "ws", 1) + "/ws" + query)
        return cls(ws, json)

    def encode(self, message: dict[str, Any]) -> bytes | str:
        if not self.json:
            return msgpack.packb(message, use_bin_type=True)
        return json.dumps({k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                           for k, v in message.items()})

    async def send_raw(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def request(self, op: str, **fields: Any) -> Any:
        """Send a request and return its result; raises NativeError for an error answer."""
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        await self.send_raw(self.encode({"id": request_id, "op": op, **fields}))
        answer = await asyncio.wait_for(future, TIMEOUT)
        if not answer["ok"]:
            raise NativeError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    async def notify(self, op: str, **fields: Any) -> None:
        """A request without an id: answered only if it fails."""
        await self.send_raw(self.encode({"op": op, **fields}))

    async def _read(self) -> None:
        async for msg in self.ws:
            self.frames.append(msg.type)
            if msg.type is aiohttp.WSMsgType.BINARY:
                message = msgpack.unpackb(msg.data, raw=False)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                message = json.loads(msg.data)
            else:
                continue
            if "event" in message:
                self.events.append(message)
            elif message.get("id") in self.pending:
                future = self.pending.pop(message["id"])
                if not future.done():  # not given up on (timed out)
                    future.set_result(message)
            else:
                self.orphans.append(message)
            self._changed.set()
        for future in self.pending.values():  # closed: no answer will come
            if not future.done():
                future.set_exception(ConnectionError(f"socket closed ({self.ws.close_code})"))
        self._changed.set()  # let waiters look at `ws.closed`

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        async with asyncio.timeout(TIMEOUT):
            while not (result := predicate()):
                self._changed.clear()
                await self._changed.wait()
        return result

    async def event(self, kind: str, /, **match: Any) -> dict[str, Any]:
        """The first event of `kind` whose fields include `match` (waits for it)."""
        def find():
            for event in self.events:
                if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
                    return event
            return None
        return await self.wait_for(find)

    def binary(self, value: Any) -> bytes:
        """A bytes field of a received message (base64 in JSON mode)."""
        return base64.b64decode(value) if self.json and isinstance(value, str) else value

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
