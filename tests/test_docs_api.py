"""The HTTP document API (gateway/docs_api.py): reads never change a document (an
absent root is 404 naming it, a root of another type 400, and the document's roots
and bytes are the same afterwards), and a document actor that never answers costs
the request a 504 after the call timeout, not a hang."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.actors.document import Document
from collab.config import Settings
from collab.gateway import docs_api
from collab.gateway.app import build_app
from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT

#: Reads of roots the document does not have: each used to add one to the live doc.
ABSENT_READS = 300


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("docs-api") / "collab.db").start()
    yield proc
    proc.stop()


def four_roots() -> bytes:
    """An update creating one root of each shared type, as a Yjs client would."""
    doc = Doc()
    doc["body"] = Text("hello")
    doc["meta"] = Map({"title": "notes", "tags": ["a", "b"]})
    doc["items"] = Array([1, "two", {"three": 3}])
    doc["prose"] = XmlFragment()
    doc["prose"].children.append(XmlElement("p", {}, [XmlText("para")]))
    return doc.get_update()


async def snapshot(session, srv: ServerProcess, doc: str) -> tuple[bytes, list[str]]:
    """The document's full state as stored in the live actor, and its root names."""
    async with session.get(f"{srv.http_url}/api/docs/{doc}") as resp:
        state = await resp.read()
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json") as resp:
        roots = (await resp.json())["roots"]
    return state, roots


async def view(session, srv: ServerProcess, doc: str, **wanted: str) -> tuple[int, dict]:
    query = urlencode({"format": "json", **wanted})
    async with session.get(f"{srv.http_url}/api/docs/{doc}?{query}") as resp:
        return resp.status, await resp.json()


async def test_reads_of_absent_or_mistyped_roots_are_refused_and_change_nothing(srv, session):
    doc = "four-roots"
    async with session.post(f"{srv.http_url}/api/docs/{doc}/update", data=four_roots()) as r:
        assert r.status == 200
    before = await snapshot(session, srv, doc)
    assert before[1] == ["body", "items", "meta", "prose"]

    for kind in ("text", "map", "array", "xml"):
        status, body = await view(session, srv, doc, **{kind: "nosuch"})
        assert (status, body["error"]["code"]) == (404, "unknown_root")
        assert "'nosuch'" in body["error"]["message"]
    for kind, root in [("map", "body"), ("array", "body"), ("xml", "body"), ("text", "meta"),
                       ("array", "meta"), ("text", "items"), ("map", "items"),
                       ("xml", "items"), ("text", "prose"), ("map", "prose"),
                       ("array", "prose")]:
        status, body = await view(session, srv, doc, **{kind: root})
        assert (status, body["error"]["code"]) == (400, "wrong_root_type"), (kind, root)
        assert f"'{root}'" in body["error"]["message"]
    for i in range(ABSENT_READS):
        status, _ = await view(session, srv, doc, map=f"phantom-{i}")
        assert status == 404

    assert await snapshot(session, srv, doc) == before
    # Each root still reads as what it is, after all the wrong-typed reads.
    status, body = await view(session, srv, doc, text="body", map="meta", array="items",
                              xml="prose")
    assert status == 200, body
    assert body == {"doc": doc, "text": {"body": "hello"},
                    "map": {"meta": {"title": "notes", "tags": ["a", "b"]}},
                    "array": {"items": [1, "two", {"three": 3}]},
                    "xml": {"prose": "<p>para</p>"}}
    assert await snapshot(session, srv, doc) == before


def varuint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            return bytes(out + bytes([byte]))
        out.append(byte | 0x80)


def deep_xml(depth: int, client: int = 1234) -> bytes:
    """A Yjs v1 update: root XML fragment "x" holding <p> in <p> in ... `depth` deep.
    (Built by hand: pycrdt takes minutes to nest that many elements one by one.)"""
    first = b"\x07\x01\x01x\x03\x01p"  # an XmlElement "p" whose parent is root "x"
    inner = (b"\x07\x00" + varuint(client) + varuint(clock - 1) + b"\x03\x01p"
             for clock in range(1, depth))  # each one's parent is the one before
    return (b"\x01" + varuint(depth) + varuint(client) + b"\x00" + first + b"".join(inner)
            + b"\x00")


async def test_a_root_too_deep_to_render_is_refused_and_the_server_lives_on(srv, session):
    async with session.post(f"{srv.http_url}/api/docs/deep/update",
                            data=deep_xml(100_000)) as resp:
        assert resp.status == 200, await resp.text()
    status, body = await view(session, srv, "deep", xml="x")  # rendering it overflowed the stack
    assert (status, body["error"]["code"]) == (400, "too_deep")
    async with session.post(f"{srv.http_url}/api/docs/shallow/update",
                            data=deep_xml(3)) as resp:
        assert resp.status == 200
    assert await view(session, srv, "shallow", xml="x") == (
        200, {"doc": "shallow", "xml": {"x": "<p><p><p></p></p></p>"}})


async def test_an_empty_document_has_no_roots_to_read(srv, session):
    status, body = await view(session, srv, "never-written", text="body")
    assert (status, body["error"]["code"]) == (404, "unknown_root")
    assert await snapshot(session, srv, "never-written") == (b"\x00\x00", [])


# -- a document actor that never answers -----------------------------------------------


@pytest.fixture
async def stuck_app(tmp_path, monkeypatch):
    """An in-process server whose document actors never finish loading (a store that
    hangs), with a short call timeout; the actors are let go at teardown."""
    release = asyncio.Event()

    async def load_forever(self) -> None:
        await release.wait()

    monkeypatch.setattr(Document, "_load", load_forever)
    monkeypatch.setattr(docs_api, "CALL_TIMEOUT", 0.2, raising=False)
    server = TestServer(build_app(Settings(database_url=f"sqlite:///{tmp_path}/stuck.db")))
    await server.start_server()
    yield server
    release.set()
    await server.close()


async def test_a_stuck_document_actor_costs_a_504_not_a_hang(stuck_app):
    timeout = aiohttp.ClientTimeout(total=TIMEOUT / 4)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        base = f"http://{stuck_app.host}:{stuck_app.port}/api/docs/stuck"
        for method, url, data in [("GET", base, None), ("GET", f"{base}?format=json", None),
                                  ("GET", f"{base}?format=json&text=body", None),
                                  ("POST", f"{base}/update", b"\x00\x00")]:
            async with session.request(method, url, data=data) as resp:
                assert resp.status == 504, (method, url)
                assert (await resp.json())["error"]["code"] == "call_timeout"


async def test_a_text_with_emoji_is_viewed_as_json(srv, session):
    """pycrdt 0.14 never returns from reading a string with a character outside the
    BMP through an Array view; telling a root's type used to do that, and the JSON
    view of such a text hung the server's event loop."""
    doc = Doc()
    doc["body"] = Text("caf\u00e9 \U0001F600 \U0001F680 done")
    doc["list"] = Array(["\U0001F600"])
    await session.post(f"{srv.http_url}/api/docs/emoji/update", data=doc.get_update())
    status, body = await asyncio.wait_for(view(session, srv, "emoji", text="body", array="list"),
                                          TIMEOUT)
    assert status == 200
    assert body["text"] == {"body": "caf\u00e9 \U0001F600 \U0001F680 done"}
    assert body["array"] == {"list": ["\U0001F600"]}
