"""The Hocuspocus endpoint (`/` and `/hocuspocus`) against real server processes:
@hocuspocus/provider from Node (convergence, several documents on one socket,
tokens, the saved signal across kill -9, stateless hooks, an idle socket), and raw
frames from Python (SyncStatus only after the commit, per-document auth and
closes, keep-alive, bad input closing only its sender)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import aiohttp
import jwt
import pytest
from pycrdt import Doc, Text

from collab.errors import CloseCode
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from collab.protocol.hocuspocus import Frame
from tests.faults import write_lock_held
from tests.serverproc import ServerProcess
from tests.test_interop_node import JS_DIR, NODE, SCRIPT_TIMEOUT_MS, SUBPROCESS_TIMEOUT, run_node
from tests.waits import TIMEOUT
from tests.yclient import Editor

SECRET = "hocuspocus-test-secret-long-enough-for-hs256"
MAX_MESSAGE = 64 * 1024
MAX_DOCS = 4
OPEN_ENV = {"COLLAB_MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
            "COLLAB_MAX_SUBSCRIPTIONS": str(MAX_DOCS)}
APP = ("--app", "tests.apps.stateless:registry")
#: Seconds the idle provider sits still: past its 30 s message timeout (and three checks).
IDLE = 36.0
#: Seconds a socket may stay open on the auth server without a document authenticated.
AUTH_TIMEOUT = 3


def token(user: str = "ann", ttl: float = 600, **grants) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time() + ttl), **grants}, SECRET,
                      algorithm="HS256")


@pytest.fixture(scope="module")
def open_srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("hp-open") / "collab.db", env=OPEN_ENV,
                         args=APP).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def auth_srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("hp-auth") / "collab.db",
                         env={"COLLAB_SECRET": SECRET,
                              "COLLAB_AUTH_TIMEOUT": str(AUTH_TIMEOUT)}).start()
    yield proc
    proc.stop()


def ws_url(srv: ServerProcess, path: str = "") -> str:
    return f"ws://127.0.0.1:{srv.port}{path}"


def node(scenario: str, url: str, *args: str) -> dict:
    return run_node("hocuspocus.mjs", "--scenario", scenario, "--url", url, *args)


def node_for(seconds: float, scenario: str, url: str, *args: str) -> dict:
    """`node`, for a scenario that takes `seconds` by design (on top of the usual budget)."""
    budget_ms = SCRIPT_TIMEOUT_MS + int(seconds * 1000)
    proc = subprocess.run([NODE, str(JS_DIR / "hocuspocus.mjs"), "--scenario", scenario,
                           "--url", url, *args, "--timeout-ms", str(budget_ms)],
                          cwd=JS_DIR, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT + seconds)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), (proc.stdout[-3000:], proc.stderr[-3000:])
    return result


def text_of(srv: ServerProcess, doc: str) -> str:
    """The document's text as the server holds it (with a token good for the auth server)."""
    request = urllib.request.Request(f"{srv.http_url}/api/docs/{doc}?format=json&text=body",
                                     headers={"Authorization": f"Bearer {token(docs={'*': 'r'})}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.load(response)["text"].get("body", "")
    except urllib.error.HTTPError as error:
        if error.code == 404:  # never written
            return ""
        raise


# -- a raw client ----------------------------------------------------------------------


class HP:
    """A Hocuspocus client speaking frames by hand, so tests send exactly what they mean."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, session, srv, path: str = "/", query: str = "") -> HP:
        return cls(await session.ws_connect(f"{ws_url(srv, path)}{query}"))

    async def send(self, key: str, message: hp.Message) -> None:
        await self.ws.send_bytes(hp.serialize(Frame(key, message)))

    async def open(self, key: str, jwt_token: str = "", version: str | None = "4.8.0") -> Frame:
        """Authenticate `key`; returns the answer (Authenticated or PermissionDenied)."""
        await self.send(key, hp.Auth(jwt_token, version))
        return await self.recv_until(lambda f: f.key == key and isinstance(
            f.message, hp.Authenticated | hp.PermissionDenied))

    async def recv(self) -> Frame | hp.Ping | hp.Pong:
        msg = await self.ws.receive(timeout=TIMEOUT)
        if msg.type is not aiohttp.WSMsgType.BINARY:
            raise ConnectionError(f"expected a binary frame, got {msg.type!r} {msg.data!r}")
        return hp.parse(msg.data)

    async def recv_until(self, predicate: Callable[[Frame], bool],
                         within: float = TIMEOUT) -> Frame:
        """The next frame that `predicate` accepts; TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.recv()
                if isinstance(frame, Frame) and predicate(frame):
                    return frame

    async def closed_with(self) -> int:
        async with asyncio.timeout(TIMEOUT):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                    return self.ws.close_code


def of(kind: type, key: str | None = None) -> Callable[[Frame], bool]:
    return lambda f: isinstance(f.message, kind) and (key is None or f.key == key)


# -- @hocuspocus/provider from Node ------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/hocuspocus"])
def test_two_providers_edit_one_document_and_converge(open_srv, path):
    doc = f"hp-converge{path.replace('/', '-')}"
    result = node("edit", ws_url(open_srv, path), "--docs", doc, "--clients", "2")
    text = result["texts"][doc]
    assert sorted(text.replace("]", "]\n").replace(">", ">\n").split()) == sorted(
        ["[0]", "[1]", f"<0:{doc}>", f"<1:{doc}>"])
    assert result["scopes"] == ["read-write", "read-write"]
    assert result["unsynced"] == [0, 0] and result["closes"] == []
    assert text_of(open_srv, doc) == text  # saved: the server holds what they converged on


def test_several_documents_on_one_socket(open_srv):
    docs = ["hp-multi/a", "hp-multi/b", "hp-multi/c"]
    result = node("edit", ws_url(open_srv), "--docs", ",".join(docs), "--clients", "2",
                  "--shared")
    assert result["socketsOpened"] == 2  # one per client, its three documents on it
    for doc in docs:
        assert f"<0:{doc}>" in result["texts"][doc] and f"<1:{doc}>" in result["texts"][doc]
        assert text_of(open_srv, doc) == result["texts"][doc]
    assert result["unsynced"] == [0] * 6


def test_the_demo_page_is_still_served_at_the_root(open_srv):
    with urllib.request.urlopen(f"{open_srv.http_url}/", timeout=TIMEOUT) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")


def test_tokens_read_write_read_only_and_refused(auth_srv):
    url = ws_url(auth_srv)
    writer = node("edit", url, "--docs", "team/notes", "--clients", "1",
                  "--token", token(docs={"team/*": "rw"}))
    assert writer["scopes"] == ["read-write"]
    saved = text_of(auth_srv, "team/notes")
    assert saved == "[0]<0:team/notes>"

    reader = node("auth", url, "--docs", "team/notes", "--token", token(docs={"team/*": "r"}),
                  "--edit", "vandalism", "--wait", "700")
    assert reader["scope"] == "readonly" and reader["text"] == saved
    assert reader["unsyncedAfterEdit"] >= 1  # refused: never reported as saved
    assert text_of(auth_srv, "team/notes") == saved

    for jwt_token, reason in [(token(docs={"other/*": "rw"}), "may not read"),
                              ("not-a-jwt", ""), ("", "missing token")]:
        refused = node("auth", url, "--docs", "team/notes", "--token", jwt_token)
        assert refused["scope"] is None and reason in refused["denied"]
        assert refused["text"] == "" and not refused["synced"]  # nothing leaked


def test_unsynced_changes_at_zero_survive_kill_9(tmp_path):
    """The provider's unsyncedChanges reaching 0 means committed: the server is killed
    with -9 right then, restarted on the same port, and the provider reconnects."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ("--port", str(port))
    srv = ServerProcess(tmp_path / "collab.db", args=args).start()
    cmd = [NODE, str(JS_DIR / "hocuspocus.mjs"), "--scenario", "reconnect",
           "--url", f"ws://127.0.0.1:{port}", "--docs", "hp-kill", "--text", "first ",
           "--more", "second", "--timeout-ms", str(SCRIPT_TIMEOUT_MS * 2)]
    proc = subprocess.Popen(cmd, cwd=JS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = json.loads(proc.stdout.readline() or "{}")
        assert first == {"phase": "saved"}, proc.stderr.read()
        srv.kill()
        srv = ServerProcess(tmp_path / "collab.db", args=args).start()
        out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT * 2)
        result = json.loads(out.strip().splitlines()[-1])
        assert result["ok"], (out, err)
        assert result["text"] == "first second" and result["disconnects"] >= 1
        assert text_of(srv, "hp-kill") == "first second"
    finally:
        proc.kill()
        srv.stop()


def test_stateless_to_the_python_hook_and_back(open_srv):
    answered = node("stateless", ws_url(open_srv), "--docs", "hp-stateless",
                    "--payload", "ping", "--expectA", "1", "--expectB", "0")
    assert answered["a"] == ["pong::hp-stateless:True"] and answered["b"] == []
    shouted = node("stateless", ws_url(open_srv), "--docs", "hp-stateless",
                   "--payload", "shout:hey", "--expectA", "1", "--expectB", "1")
    assert shouted["a"] == ["hey"] and shouted["b"] == ["hey"]


def test_an_idle_provider_stays_connected_past_its_message_timeout(open_srv):
    """The provider closes a socket that received nothing for 30 s: the server pings."""
    result = node_for(IDLE, "idle", ws_url(open_srv), "--docs", "hp-idle",
                      "--idle-ms", str(int(IDLE * 1000)))
    assert result["disconnects"] == 0 and result["socketsOpened"] == 0 and result["synced"]


# -- raw frames ----------------------------------------------------------------------------


async def test_nothing_is_sent_for_a_document_before_it_is_authenticated(open_srv, session):
    client = await HP.connect(session, open_srv)
    await client.send("hp-raw/first", ywire.SyncStep1(b"\x00"))  # before any Auth: ignored
    await client.send("hp-raw/first", ywire.QueryAwareness())
    answer = await client.open("hp-raw/first")
    assert answer.message == hp.Authenticated(hp.READ_WRITE)
    first = await client.recv()  # the document's own step 1 comes only now
    assert first == Frame("hp-raw/first", ywire.SyncStep1(b"\x00"))


async def test_sync_status_comes_only_after_the_commit(session, server_factory):
    srv = server_factory("hp-commit")
    a, b = await HP.connect(session, srv), await HP.connect(session, srv)
    await a.open("hp-saved"), await b.open("hp-saved")
    async with write_lock_held(srv):
        await a.send("hp-saved", ywire.SyncUpdate(Editor().type("durable")))
        got = await b.recv_until(of(ywire.SyncUpdate))  # broadcast at once, before the commit
        assert text(got.message.update) == "durable"
        with pytest.raises(TimeoutError):  # the store cannot commit: no SyncStatus yet
            await a.recv_until(of(hp.SyncStatus), within=1.0)
    status = await a.recv_until(of(hp.SyncStatus))
    assert status.message == hp.SyncStatus(True)
    with sqlite3.connect(srv.db_path) as db:
        assert db.execute("SELECT count(*) FROM doc_updates WHERE doc = 'hp-saved'"
                          ).fetchone()[0] >= 1


async def test_a_step_2_adding_nothing_waits_for_a_failed_commit_to_be_written_again(
        session, server_factory):
    """A provider's update fails to commit (the write lock held past the server's 5 s
    busy timeout); it reconnects and, holding nothing the server lacks, answers the
    sync with an empty step 2. SyncStatus true then would bring its unsyncedChanges
    to 0 while the change is held in memory only, and kill -9 would lose it."""
    srv = server_factory("hp-kept")
    first = await HP.connect(session, srv)
    await first.open("hp-kept")
    async with write_lock_held(srv):
        await first.send("hp-kept", ywire.SyncUpdate(Editor().type("durable")))
        assert await first.closed_with() == CloseCode.TRY_AGAIN_LATER  # the commit failed
        again = await HP.connect(session, srv)
        await again.open("hp-kept")
        await again.send("hp-kept", ywire.SyncStep2(ywire.EMPTY_UPDATE))
        with contextlib.suppress(ConnectionError):  # the socket closed: retry later
            answer = await again.recv_until(of(hp.SyncStatus))
            assert answer.message != hp.SyncStatus(True), "saved while not committed"
        assert await again.closed_with() == CloseCode.TRY_AGAIN_LATER
    last = await HP.connect(session, srv)
    await last.open("hp-kept")
    await last.send("hp-kept", ywire.SyncStep2(ywire.EMPTY_UPDATE))
    assert (await last.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(True)
    srv.kill()
    assert text_of(server_factory("hp-kept"), "hp-kept") == "durable"


def text(update: bytes) -> str:
    doc = Doc()
    doc.apply_update(update)
    return str(doc.get("body", type=Text))


async def test_session_keys_share_a_socket_and_a_document(open_srv, session):
    client = await HP.connect(session, open_srv)
    one, two = "hp-sessions\0s1", "hp-sessions\0s2"
    await client.open(one), await client.open(two)
    await client.send(one, ywire.SyncUpdate(Editor().type("via one")))
    got = await client.recv_until(of(ywire.SyncUpdate, two))
    assert text(got.message.update) == "via one"
    await client.recv_until(of(hp.SyncStatus, one))


async def test_close_leaves_one_document_and_keeps_the_others(open_srv, session):
    a, b = await HP.connect(session, open_srv), await HP.connect(session, open_srv)
    for key in ("hp-close/x", "hp-close/y"):
        await a.open(key)
    await b.open("hp-close/x")
    state = ywire.AwarenessEntry(77, 1, '{"user":"a"}')
    await a.send("hp-close/x", ywire.AwarenessMessage(ywire.encode_awareness([state])))
    await b.recv_until(of(ywire.AwarenessMessage))
    await a.send("hp-close/x", hp.Close())
    removal = await b.recv_until(of(ywire.AwarenessMessage))
    assert ywire.decode_awareness(removal.message.payload) == [
        ywire.AwarenessEntry(77, 1, "null")]
    await a.send("hp-close/y", ywire.SyncUpdate(Editor().type("still here")))
    assert (await a.recv_until(of(hp.SyncStatus, "hp-close/y"))).message.applied
    await a.send("hp-close/x", ywire.SyncUpdate(Editor().type("closed")))  # ignored
    assert (await a.open("hp-close/x")).message == hp.Authenticated(hp.READ_WRITE)


async def test_a_bad_update_closes_its_document_only(open_srv, session):
    client = await HP.connect(session, open_srv)
    await client.open("hp-bad/doc"), await client.open("hp-bad/other")
    await client.send("hp-bad/doc", ywire.SyncUpdate(b"garbage!"))
    closed = await client.recv_until(of(hp.Close, "hp-bad/doc"))
    assert closed.message.reason.startswith(f"{CloseCode.INVALID_PAYLOAD} ")
    await client.send("hp-bad/other", ywire.SyncUpdate(Editor().type("fine")))
    assert (await client.recv_until(of(hp.SyncStatus, "hp-bad/other"))).message.applied


async def test_a_deleted_document_is_closed_with_4410(open_srv, session):
    client = await HP.connect(session, open_srv)
    await client.open("hp-deleted")
    await client.send("hp-deleted", ywire.SyncUpdate(Editor().type("doomed")))
    await client.recv_until(of(hp.SyncStatus))
    async with session.delete(f"{open_srv.http_url}/api/docs/hp-deleted") as response:
        assert response.status == 204
    closed = await client.recv_until(of(hp.Close, "hp-deleted"))
    assert closed.message.reason == f"{CloseCode.DOCUMENT_DELETED} document deleted"


async def test_names_and_the_documents_per_socket_limit(open_srv, session):
    client = await HP.connect(session, open_srv)
    for bad in ["a b", "..", "x/", "é"]:
        answer = await client.open(bad)
        assert isinstance(answer.message, hp.PermissionDenied)
        assert "invalid document name" in answer.message.reason
    for i in range(MAX_DOCS):
        assert isinstance((await client.open(f"hp-limit/{i}")).message, hp.Authenticated)
    refused = await client.open("hp-limit/one-more")
    assert "COLLAB_MAX_SUBSCRIPTIONS" in refused.message.reason
    await client.send("hp-limit/0", hp.Close())
    assert isinstance((await client.open("hp-limit/one-more")).message, hp.Authenticated)


async def test_ping_pong_and_the_awareness_echo_of_old_providers(open_srv, session):
    client = await HP.connect(session, open_srv)
    await client.ws.send_bytes(hp.serialize(hp.Ping()))
    assert await client.recv() == hp.Pong()
    await client.open("hp-echo", version=None)  # a provider before 4.0: knows no Ping
    await client.recv_until(of(ywire.SyncStep1))
    await asyncio.sleep(5.5)  # quiet for longer than ECHO_IDLE
    state = ywire.encode_awareness([ywire.AwarenessEntry(5, 1, '{"a":1}')])
    await client.send("hp-echo", ywire.AwarenessMessage(state))
    echo = await client.recv_until(of(ywire.AwarenessMessage))
    assert echo.message.payload == state


async def test_stateless_hooks_run_in_order_and_a_failing_one_is_logged(open_srv, session):
    client = await HP.connect(session, open_srv)
    await client.open("hp-hooks")
    await client.send("hp-hooks", hp.Stateless("boom"))
    await client.send("hp-hooks", hp.Stateless("count?"))
    answer = await client.recv_until(of(hp.Stateless))
    assert answer.message.payload == "2"  # both heard by `count` first, "boom" included
    assert "the hook failed on purpose" in open_srv.log()
    await client.open("quiet/doc")  # no hook matches: nothing comes back
    await client.send("quiet/doc", hp.Stateless("ping"))
    await client.send("hp-hooks", hp.Stateless("ping"))
    assert (await client.recv_until(of(hp.Stateless))).key == "hp-hooks"


BAD_FRAMES = [
    pytest.param(b"\x05ab", CloseCode.PROTOCOL_ERROR, id="truncated-key"),
    pytest.param(hp.prefix("hp-bad-frames") + b"\x0b", CloseCode.UNSUPPORTED_DATA,
                 id="unknown-type"),
    pytest.param(hp.serialize(Frame("hp-bad-frames", hp.SyncStatus(True))),
                 CloseCode.UNSUPPORTED_DATA, id="server-only"),
    pytest.param(hp.prefix("hp-bad-frames") + b"\x05\x02\xc3\x28", CloseCode.INVALID_PAYLOAD,
                 id="not-utf8"),
    pytest.param(hp.prefix("hp-bad-frames") + b"\x00\x02" + ywire.write_var_bytes(
        b"\x00" * (MAX_MESSAGE + 10)), CloseCode.MESSAGE_TOO_BIG, id="too-big"),
    pytest.param("text", CloseCode.UNSUPPORTED_DATA, id="text-frame"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_bad_frames_close_only_their_socket(open_srv, session, frame, code):
    good, bad = await HP.connect(session, open_srv), await HP.connect(session, open_srv)
    await good.open("hp-bad-frames"), await bad.open("hp-bad-frames")
    if isinstance(frame, str):
        await bad.ws.send_str(frame)
    else:
        await bad.ws.send_bytes(frame)
    assert await bad.closed_with() == code
    await good.send("hp-bad-frames", ywire.SyncUpdate(Editor().type("carry on")))
    assert (await good.recv_until(of(hp.SyncStatus))).message.applied


# -- auth from raw frames --------------------------------------------------------------------


async def test_a_refused_document_leaves_the_socket_open_for_another(auth_srv, session):
    client = await HP.connect(session, auth_srv)
    jwt_token = token(docs={"mine/*": "rw"})
    denied = await client.open("theirs/doc", jwt_token)
    assert isinstance(denied.message, hp.PermissionDenied)
    await client.send("theirs/doc", ywire.SyncStep1(b"\x00"))  # as a provider does: ignored
    assert (await client.open("mine/doc", jwt_token)).message == hp.Authenticated(hp.READ_WRITE)
    await client.send("mine/doc", ywire.SyncUpdate(Editor().type("x" * 100_000)))  # > 64 KiB
    assert (await client.recv_until(of(hp.SyncStatus))).message.applied
    other_user = await client.open("mine/two", token("bob", docs={"mine/*": "rw"}))
    assert "speaks for user 'ann'" in other_user.message.reason


async def test_read_only_updates_are_refused_with_a_false_sync_status(auth_srv, session):
    client = await HP.connect(session, auth_srv)
    answer = await client.open("ro/doc", token(docs={"ro/*": "r"}))
    assert answer.message == hp.Authenticated(hp.READ_ONLY)
    await client.send("ro/doc", ywire.SyncStep2(ywire.EMPTY_UPDATE))  # nothing new: fine
    assert (await client.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(True)
    await client.send("ro/doc", ywire.SyncUpdate(Editor().type("no")))
    assert (await client.recv_until(of(hp.SyncStatus))).message == hp.SyncStatus(False)
    assert text_of(auth_srv, "ro/doc") == ""


async def test_a_token_in_the_url_covers_documents_sent_without_one(auth_srv, session):
    client = await HP.connect(session, auth_srv, query=f"?token={token(docs={'url/*': 'rw'})}")
    assert (await client.open("url/doc")).message == hp.Authenticated(hp.READ_WRITE)


async def test_an_auth_hook_reads_the_socket_s_cookie_for_every_document(server_factory):
    """With an auth hook, each document a socket opens is checked with the upgrade
    request's cookies (the request is kept for the hook: without one it is not)."""
    srv = server_factory("hp-hook",
                         env={"COLLAB_AUTH_HOOK": "tests.apps.session_auth:authenticate"})
    # An API key alone is read-only (the hook's rule); with ann's session cookie, the
    # cookie wins, for the first document and for one opened later.
    async with aiohttp.ClientSession() as plain:
        bob = await HP.connect(plain, srv)
        assert (await bob.open("hook/a", "key-bob")).message == hp.Authenticated(hp.READ_ONLY)
    async with aiohttp.ClientSession(cookies={"session": "s-ann"}) as browser:
        ann = await HP.connect(browser, srv)
        assert (await ann.open("hook/a", "key-bob")).message == hp.Authenticated(hp.READ_WRITE)
        await asyncio.sleep(0.5)
        assert (await ann.open("hook/b", "key-bob")).message == hp.Authenticated(hp.READ_WRITE)


async def test_a_socket_that_authenticates_nothing_is_closed_in_time(auth_srv, session):
    client = await HP.connect(session, auth_srv)
    await client.open("theirs/doc", token(docs={"mine/*": "rw"}))
    assert await client.closed_with() == CloseCode.UNAUTHORIZED
