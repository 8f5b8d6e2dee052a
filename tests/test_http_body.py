"""HTTP request bodies (gateway/http_body.py) against real server processes: a body
up to COLLAB_MAX_MESSAGE_BYTES is read whole, however the client sends it; past it
the answer is 413 `too_large`, also for a chunked body without Content-Length, and
nothing of it is applied or stored. Document updates, actor calls, queue sends and
the admin API all read their bodies the same way."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest
from pycrdt import Doc, Text

from tests.serverproc import ServerProcess
from tests.test_revocations import AUTH_ENV, a_user, token

#: A limit well under the default (8 MiB), so bodies over it stay cheap to send.
LIMIT = 3 * 1024 * 1024
ENV = {"COLLAB_MAX_MESSAGE_BYTES": str(LIMIT)}
#: Bytes per chunk of a chunked body, like a client streaming a file.
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("http-body") / "collab.db", env=ENV,
                         args=("--app", "tests.apps.counter:registry")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def auth_srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("http-body-auth") / "collab.db",
                         env={**ENV, **AUTH_ENV}).start()
    yield proc
    proc.stop()


def big_update(size: int) -> tuple[bytes, str]:
    """A valid Yjs update of about `size` bytes (one text root "body"), and its text.
    Text that does not compress: an update's size is about its text's."""
    text = os.urandom(size // 2).hex()
    doc = Doc()
    doc["body"] = Text(text)
    return doc.get_update(), text


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    """`body` as a stream: aiohttp sends it chunked, with no Content-Length."""
    for start in range(0, len(body), CHUNK):
        yield body[start:start + CHUNK]


def stored_rows(srv: ServerProcess, table: str, where: str, *params: str) -> int:
    """Rows of `table` in the server's SQLite file (read beside the live server)."""
    with sqlite3.connect(srv.db_path) as db:
        return db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]


async def error_code(resp) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]["code"]


# -- document updates -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["content-length", "chunked"])
async def test_a_large_valid_update_is_applied_whole(srv, session, stream):
    doc = f"big-{stream}"
    update, text = big_update(3 * LIMIT // 4)
    assert len(update) > 2 * 1024 * 1024
    data = chunked(update) if stream else update
    async with session.post(f"{srv.http_url}/api/docs/{doc}/update", data=data) as resp:
        assert resp.status == 200, await resp.text()
    async with session.get(f"{srv.http_url}/api/docs/{doc}") as resp:
        back = Doc()
        back.apply_update(await resp.read())
    assert str(back.get("body", type=Text)) == text


@pytest.mark.parametrize("body", [b"\x00" * (2 * LIMIT), big_update(LIMIT + CHUNK)[0]],
                         ids=["zeros", "valid-update"])
async def test_a_chunked_update_over_the_limit_is_refused_and_nothing_is_stored(
        srv, session, body):
    doc = f"over-{len(body)}"
    async with session.post(f"{srv.http_url}/api/docs/{doc}/update",
                            data=chunked(body)) as resp:
        assert await error_code(resp) == (413, "too_large")
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json") as resp:
        assert (await resp.json())["roots"] == []
    assert stored_rows(srv, "doc_updates", "doc = ?", doc) == 0


# -- actor calls and queues -----------------------------------------------------------


def padded(json_text: str, size: int) -> bytes:
    """A valid JSON body of `size` bytes: `json_text` and trailing whitespace."""
    return json_text.encode() + b" " * (size - len(json_text))


async def test_an_actor_call_near_the_limit_is_read_whole(srv, session):
    url = f"{srv.http_url}/api/actors/lobby/near/actions/say"
    text = "x" * (LIMIT - 100)
    async with session.post(url, data=chunked(f'{{"args": ["{text}"]}}'.encode())) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["result"] == 1


async def test_a_chunked_actor_call_over_the_limit_is_refused_and_not_run(srv, session):
    base = f"{srv.http_url}/api/actors/counter/over"
    async with session.post(f"{base}/actions/increment",
                            data=chunked(padded('{"args": [5]}', 2 * LIMIT))) as resp:
        assert await error_code(resp) == (413, "too_large")
    async with session.post(f"{base}/actions/get", json={}) as resp:
        assert (await resp.json())["result"]["count"] == 0


async def test_chunked_queue_and_workflow_bodies_over_the_limit_are_refused(srv, session):
    base = f"{srv.http_url}/api/actors/worker/over"
    async with session.post(f"{base}/queues/jobs",
                            data=chunked(padded('{"n": 1}', 2 * LIMIT))) as resp:
        assert await error_code(resp) == (413, "too_large")
    async with session.get(f"{base}/queues/jobs") as resp:
        assert (await resp.json())["pending"] == 0
    assert stored_rows(srv, "actor_queue", "key = ?", "over") == 0
    async with session.post(f"{srv.http_url}/api/actors/agent/over/workflows/doomed",
                            data=chunked(padded("{}", 2 * LIMIT))) as resp:
        assert await error_code(resp) == (413, "too_large")
    assert stored_rows(srv, "actor_workflows", "key = ?", "over") == 0


# -- the admin API -------------------------------------------------------------------------


async def test_chunked_admin_bodies_over_the_limit_are_refused_and_change_nothing(
        auth_srv, session):
    user = a_user()
    issued = time.time() - 5
    admin = {"Authorization": f"Bearer {token('ops', issued=issued, admin=True)}"}
    for path, body in [("revoke", f'{{"user": "{user}"}}'),
                       ("permissions", f'{{"user": "{user}", "docs": {{"*": "none"}}}}')]:
        async with session.post(f"{auth_srv.http_url}/api/admin/{path}", headers=admin,
                                data=chunked(padded(body, 2 * LIMIT))) as resp:
            assert await error_code(resp) == (413, "too_large")
    # Neither the revocation nor the limits happened: the user's token still reads.
    eve = {"Authorization": f"Bearer {token(user, issued=issued)}"}
    async with session.get(f"{auth_srv.http_url}/api/docs/notes", headers=eve) as resp:
        assert resp.status == 200, await resp.text()
    assert stored_rows(auth_srv, "revocations", "user_id = ?", user) == 0
    assert stored_rows(auth_srv, "user_limits", "user_id = ?", user) == 0
