"""Every TCP connection is bounded, against real server processes: idle raw connections
past the descriptor limit do not stop the server answering /healthz (the idle ones are
closed to make room, or at COLLAB_HEADER_TIMEOUT) nor fill its log, even when accepts
fail for want of descriptors; the per-address limit counts every socket; a request
head is bounded in size; idle keep-alive connections close at COLLAB_KEEPALIVE_TIMEOUT;
and with auth on, a connection that has not authenticated carries one request."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.serverproc import ServerProcess
from tests.test_auth_gateway import SECRET, token
from tests.waits import TIMEOUT, until

#: The server's descriptor limit in these tests: low, so a test can pass it.
MAX_FILES = 256
#: Idle connections opened against it: more than it can hold.
IDLE = 400
#: Bytes the server's log may grow by while the idle connections come and go: a few
#: lines, never one per connection.
LOG_BUDGET = 8 * 1024


async def http_get(port: int, path: str, headers: str = "") -> tuple[int, str, bytes,
                                                                   asyncio.StreamReader,
                                                                   asyncio.StreamWriter]:
    """GET `path` on a new connection: (status, the head, the body, the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: collab\r\n{headers}\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = next(int(line.split(":")[1]) for line in head.split("\r\n")
                  if line.lower().startswith("content-length:"))
    body = await reader.readexactly(length)
    return int(head.split()[1]), head, body, reader, writer


async def limits(port: int) -> dict[str, float]:
    """collab_connection_limits_total by reason, from /metrics (asked again while the
    server still counts a connection just closed against the address's limit)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            status, _, body, _, writer = await http_get(port, "/metrics")
            writer.close()
            if status == 200:
                break
            await asyncio.sleep(0.05)
    found = re.findall(r'collab_connection_limits_total\{reason="(\w+)"\} (\S+)', body.decode())
    return {reason: float(value) for reason, value in found}


async def healthz(port: int) -> int:
    async with asyncio.timeout(TIMEOUT):
        status, _, _, _, writer = await http_get(port, "/healthz")
    writer.close()
    return status


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Reads to the end of the connection (whatever the server said last): True."""
    try:
        await reader.read()
    except ConnectionError:
        pass
    return True


async def open_idle(port: int, count: int) -> list[tuple[asyncio.StreamReader,
                                                          asyncio.StreamWriter]]:
    """`count` connections that never send a byte."""
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]


async def idle_flood(srv: ServerProcess, opened: list | None = None) -> None:
    """IDLE silent connections (or `opened` ones): /healthz answers throughout, every one
    of them is closed by the server, and its log stays small."""
    log_before = srv.log_path.stat().st_size
    idle = opened or await open_idle(srv.port, IDLE)
    for _ in range(3):
        assert await healthz(srv.port) == 200
    async with asyncio.timeout(TIMEOUT):
        assert all(await asyncio.gather(*(closed_by_server(r) for r, _ in idle)))
    assert await healthz(srv.port) == 200
    grown = srv.log_path.stat().st_size - log_before
    assert grown <= LOG_BUDGET, srv.log()[-3000:]
    for _, writer in idle:
        writer.close()


async def test_idle_connections_past_the_descriptor_limit(tmp_path):
    srv = ServerProcess(tmp_path / "idle.db", env={"COLLAB_HEADER_TIMEOUT": "3"},
                        max_files=MAX_FILES).start()
    try:
        await idle_flood(srv)
        counted = await limits(srv.port)  # made room, or the deadline passed
        assert counted["idle_closed"] + counted["header_timeout"] >= IDLE
    finally:
        assert srv.stop() == 0


async def test_silent_sockets_waiting_to_authenticate_past_the_descriptor_limit(tmp_path):
    """`/ws` sockets upgraded without credentials that never send their auth message
    hold nothing, but a descriptor each: the one waiting longest makes room."""
    from tests.test_preauth import upgrade

    srv = ServerProcess(tmp_path / "silent.db", env={"COLLAB_SECRET": SECRET,
                                                     "COLLAB_AUTH_TIMEOUT": "3"},
                        max_files=MAX_FILES).start()
    try:
        silent = [await upgrade(srv.port) for _ in range(IDLE)]
        await idle_flood(srv, silent)
    finally:
        assert srv.stop() == 0


async def test_accepts_that_fail_for_want_of_descriptors_back_off_quietly(tmp_path):
    # No descriptors kept in reserve: accepts fail (EMFILE) before the connection
    # limit is reached. A sitecustomize module lowers it as the server starts.
    (tmp_path / "sitecustomize.py").write_text(
        "import collab.gateway.listener as listener\nlistener.DESCRIPTOR_RESERVE = 0\n")
    srv = ServerProcess(tmp_path / "emfile.db", env={"COLLAB_HEADER_TIMEOUT": "3",
                                                     "PYTHONPATH": str(tmp_path)},
                        max_files=MAX_FILES).start()
    try:
        await idle_flood(srv)
    finally:
        assert srv.stop() == 0
    failures = [line for line in srv.log().splitlines() if "cannot accept connections" in line]
    assert 1 <= len(failures) <= 3 and "Too many open files" in failures[0]


async def test_the_per_address_limit_counts_every_socket(server_factory):
    srv = server_factory("per-ip", env={"COLLAB_MAX_CONNECTIONS_PER_IP": "5"})
    idle = await open_idle(srv.port, 5)  # raw sockets, never upgraded: they count too
    status, head, body, _, writer = await http_get(srv.port, "/healthz")
    writer.close()
    assert status == 429 and "Connection: close" in head
    error = json.loads(body)["error"]
    assert error["code"] == "too_many_connections"
    assert "COLLAB_MAX_CONNECTIONS_PER_IP" in error["message"]
    idle.pop()[1].close()  # one gives its place back
    await until(lambda: _healthz_ok(srv.port))
    assert (await limits(srv.port))["too_many_connections"] >= 1
    for _, writer in idle:
        writer.close()


async def _healthz_ok(port: int) -> bool:
    return await healthz(port) == 200


async def test_a_request_head_is_bounded_in_size(server):
    fine = "".join(f"X-Fine-{i}: {'v' * 100}\r\n" for i in range(100))  # ~11 KiB
    assert (await http_get(server.port, "/healthz", fine))[0] == 200
    many = "".join(f"X-Many-{i}: {'v' * 200}\r\n" for i in range(100))  # ~21 KiB
    status, _, body, reader, _ = await http_get(server.port, "/healthz", many)
    assert status == 431 and json.loads(body)["error"]["code"] == "header_too_large"
    assert await closed_by_server(reader)
    # One that never ends is cut off at the limit, long before its deadline.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n" + b"X-Slow: " + b"v" * 32 * 1024)
    async with asyncio.timeout(TIMEOUT):
        assert (await reader.read()).startswith(b"HTTP/1.1 431 ")


async def test_an_idle_keepalive_connection_is_closed(server_factory):
    srv = server_factory("keepalive", env={"COLLAB_KEEPALIVE_TIMEOUT": "1"})  # no auth: kept
    status, head, _, reader, _ = await http_get(srv.port, "/healthz")
    assert status == 200 and "Connection: close" not in head
    async with asyncio.timeout(TIMEOUT):
        assert await closed_by_server(reader)


@pytest.mark.parametrize(("path", "authenticated", "kept"), [
    ("/healthz", False, False),
    ("/api/docs/d", False, False),  # 401
    ("/api/docs/d", True, True),
])
async def test_a_connection_that_has_not_authenticated_carries_one_request(
        server_factory, path, authenticated, kept):
    # The token is made now: one made when the tests were collected may have expired
    # by the time a long run reaches this test.
    credentials = (f"Authorization: Bearer {token('ann', docs={'*': 'r'})}\r\n"
                   if authenticated else "")
    srv = server_factory("one-request", env={"COLLAB_SECRET": SECRET})
    status, head, _, reader, writer = await http_get(srv.port, path, credentials)
    assert status in (200, 401)
    assert ("Connection: close" not in head) == kept
    if kept:  # a second request on the same connection
        writer.write(f"GET {path} HTTP/1.1\r\nHost: collab\r\n{credentials}\r\n".encode())
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
    else:
        async with asyncio.timeout(TIMEOUT):
            assert await closed_by_server(reader)
    writer.close()
