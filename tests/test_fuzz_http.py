"""HTTP bodies and paths against one real server: arbitrary and mutated bodies for
document updates and actor calls get a JSON 4xx (or a 2xx when they happen to be
valid), never a 5xx, never a hang; a refused update changes nothing, and the
server keeps serving valid requests."""

from __future__ import annotations

import http.client
import itertools
import json
from collections.abc import Iterator
from urllib.parse import quote

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serverproc import ServerProcess
from tests.test_fuzz_actors import BASE, _panics, expected_after
from tests.test_fuzz_decoders import mutate, real_update

#: Client timeout per request, seconds: the server answers these in milliseconds;
#: anything slower is the hang this module looks for.
REQUEST_TIMEOUT = 5.0
#: Each example is one to three requests on loopback (about 2 ms each).
EXAMPLES = 80
HTTP = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

VALID_CALL = {"args": ["c-1", "hello"], "kwargs": {"meta": {"k": [1, 2]}, "user": "u"}}
JSON_CALL = json.dumps(VALID_CALL).encode()
MSGPACK_CALL = msgpack.packb(VALID_CALL)


class Server:
    def __init__(self, proc: ServerProcess) -> None:
        self.proc = proc
        self.names = itertools.count()

    def request(self, method: str, path: str, body: bytes = b"",
                content_type: str = "application/json") -> tuple[int, str, bytes]:
        """One request on a fresh connection: (status, content type, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.proc.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": content_type})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", ""), resp.read()
        finally:
            conn.close()

    def name(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    proc = ServerProcess(tmp_path_factory.mktemp("fuzz-http") / "collab.db").start()
    yield Server(proc)
    proc.stop()


def check_answer(status: int, content_type: str, body: bytes) -> None:
    """2xx, or a 4xx with the JSON error envelope; a 5xx is a server bug."""
    assert status < 500, (status, body[:300])
    if status >= 400:
        assert content_type.startswith("application/json"), content_type
        error = json.loads(body)["error"]
        assert isinstance(error["code"], str) and error["code"]


def still_serving(server: Server) -> None:
    status, _, body = server.request("GET", "/healthz")
    assert status == 200, body


# -- document updates -----------------------------------------------------------------


def post_update(server: Server, update: bytes) -> None:
    """POST `update` to a document holding BASE: a 200 with the doc as pycrdt
    makes it, or a 4xx with the doc byte-identical to before."""
    doc = server.name("doc")
    assert server.request("POST", f"/api/docs/{doc}/update", BASE,
                          "application/octet-stream")[0] == 200
    _, _, before = server.request("GET", f"/api/docs/{doc}")
    status, content_type, body = server.request(
        "POST", f"/api/docs/{doc}/update", update, "application/octet-stream")
    check_answer(status, content_type, body)
    _, _, after = server.request("GET", f"/api/docs/{doc}")
    expected = expected_after(update)
    if status >= 400:
        assert after == before
        assert expected is None or not update  # an empty body is refused before pycrdt
    else:
        assert expected is not None and after == expected[1]


@HTTP
@given(st.sampled_from([real_update(), real_update("other", 5)]), st.data())
def test_mutated_doc_updates(server, update, data):
    corrupt = mutate(data.draw, update)
    if _panics(corrupt):
        return  # would kill the document's actor: see test_fuzz_actors.py
    post_update(server, corrupt)


@settings(HTTP, max_examples=30)
@given(st.binary(max_size=64))
def test_arbitrary_doc_update_bodies(server, body):
    if _panics(body):
        return
    post_update(server, body)


# -- actor calls ----------------------------------------------------------------------

ACTOR_PATHS = ["/api/actors/room/{key}/actions/send", "/api/actors/room/{key}/actions/history",
               "/api/actors/room/{key}/queues/inbox", "/api/actors/room/{key}/workflows/w",
               "/api/actors/nosuchkind/{key}/actions/send"]


@HTTP
@given(st.sampled_from(ACTOR_PATHS), st.sampled_from([
    ("application/json", JSON_CALL), ("application/msgpack", MSGPACK_CALL)]), st.data())
def test_mutated_actor_bodies(server, path, typed, data):
    content_type, valid = typed
    body = mutate(data.draw, valid)
    status, answer_type, answer = server.request(
        "POST", path.format(key=server.name("room")), body, content_type)
    check_answer(status, answer_type, answer)


@settings(HTTP, max_examples=40)
@given(st.sampled_from(ACTOR_PATHS[:3]), st.sampled_from(["application/json",
                                                           "application/msgpack"]),
       st.binary(max_size=64))
def test_arbitrary_actor_bodies(server, path, content_type, body):
    status, answer_type, answer = server.request(
        "POST", path.format(key=server.name("room")), body, content_type)
    check_answer(status, answer_type, answer)


@settings(HTTP, max_examples=40)
@given(st.text(min_size=1, max_size=40))
def test_arbitrary_names_in_paths(server, name):
    """Any percent-encoded document name or actor key: a JSON answer, never a 5xx."""
    quoted = quote(name, safe="")
    for method, path, body in (
            ("GET", f"/api/docs/{quoted}", b""),
            ("POST", f"/api/docs/{quoted}/update", BASE),
            ("POST", f"/api/actors/room/{quoted}/actions/history", b"")):
        status, content_type, answer = server.request(method, path, body,
                                                      "application/octet-stream")
        check_answer(status, content_type, answer)


def test_server_still_serves_after_fuzzing(server):
    still_serving(server)
    doc = server.name("after")
    status, _, body = server.request("POST", f"/api/docs/{doc}/update", real_update(),
                                     "application/octet-stream")
    assert status == 200 and json.loads(body)["committed"] is True
    status, _, body = server.request("POST", f"/api/actors/room/{doc}/actions/send",
                                     JSON_CALL)
    assert status == 200, body


#: Bodies that once broke a decoder (deep JSON nesting raised RecursionError: a 500),
#: or that decoders tend to get wrong.
PATHOLOGICAL = [
    pytest.param("application/json", b"[" * 100_000),
    pytest.param("application/json", b'{"args":' * 20_000),
    ("application/json", b'{"args":["c",' + b'"\xff\xfe"' + b"]}"),  # not UTF-8
    ("application/json", b'{"args":["c","hi"],"kwargs":{"meta":{"n":NaN}}}'),
    ("application/json", b'{"args":["c","hi"],"kwargs":{"meta":{"n":1e999}}}'),
    ("application/msgpack", b"\x91" * 100_000),
    ("application/msgpack", msgpack.packb({"args": ["c", "hi"], "kwargs": {
        "meta": {"t": msgpack.ExtType(5, b"x")}}})),
    ("application/msgpack", msgpack.packb({"args": ["c", msgpack.Timestamp(0)]})),
    ("application/msgpack", b"\x82\xa4args\x92\xa1c\xa2hi\xa6kwargs\x81\x01\x02"),  # int kwarg
]


@pytest.mark.parametrize("content_type, body", PATHOLOGICAL)
@pytest.mark.parametrize("path", ACTOR_PATHS[:3])
def test_pathological_actor_bodies(server, path, content_type, body):
    status, answer_type, answer = server.request(
        "POST", path.format(key=server.name("patho")), body, content_type)
    check_answer(status, answer_type, answer)


# -- the admin API (open in development mode, which this server runs in) -----------------

ADMIN_PATHS = ["/api/admin/revoke", "/api/admin/permissions"]
VALID_LIMITS = json.dumps({"user": "fuzz", "docs": {"notes-*": "r", "secret/*": "none"},
                           "rooms": {"*": "rw"}}).encode()


@HTTP
@given(st.sampled_from(ADMIN_PATHS), st.data())
def test_mutated_admin_bodies(server, path, data):
    body = mutate(data.draw, VALID_LIMITS)
    check_answer(*server.request("POST", path, body))


@settings(HTTP, max_examples=30)
@given(st.sampled_from(ADMIN_PATHS), st.binary(max_size=64))
def test_arbitrary_admin_bodies(server, path, body):
    check_answer(*server.request("POST", path, body))


@pytest.mark.parametrize("path, body", [
    *((path, body) for path in ADMIN_PATHS  # once a 500: RecursionError from the decoder
      for body in (b"[" * 100_000, b'{"user":' * 20_000, b'{"user": "\xff\xfe"}')),
    ("/api/admin/permissions", b'{"user": "u", "docs": {"": "r"}}'),
    ("/api/admin/permissions", b'{"user": "u", "docs": {"*": null}}'),
    ("/api/admin/permissions", b'{"user": "u", "actors": {"*": "write"}}')])
def test_pathological_admin_bodies(server, path, body):
    status, answer_type, answer = server.request("POST", path, body)
    check_answer(status, answer_type, answer)
    assert status == 400, answer
