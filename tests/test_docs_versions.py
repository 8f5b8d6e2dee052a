"""Versions of documents against a real server process: named ones over HTTP,
automatic ones after editing and at hibernation, reading one (binary and JSON),
restoring one while stock clients type (npm y-websocket), limits and bad input."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Doc, Map, Text

from tests.serverproc import ServerProcess
from tests.test_interop_node import require_node, run_node
from tests.waits import until
from tests.yclient import Editor


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    env = {"COLLAB_MAX_VERSIONS": "4", "COLLAB_AUTO_VERSION_SECONDS": "0"}
    proc = ServerProcess(tmp_path_factory.mktemp("versions") / "collab.db", env=env).start()
    yield proc
    proc.stop()


async def post(session, url: str, **kwargs) -> tuple[int, dict]:
    async with session.post(url, **kwargs) as resp:
        return resp.status, await resp.json()


async def text_of(session, srv: ServerProcess, doc: str, version: int | None = None) -> str:
    path = f"/versions/{version}" if version is not None else ""
    async with session.get(f"{srv.http_url}/api/docs/{doc}{path}?format=json&text=body") as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["text"]["body"]


async def test_named_versions_are_kept_listed_read_and_restored(srv, session):
    doc, base = "versioned", f"{srv.http_url}/api/docs/versioned"
    editor = Editor()
    await session.post(f"{base}/update", data=editor.type("first"))
    status, v1 = await post(session, f"{base}/versions", json={"name": "draft"})
    assert status == 201 and (v1["id"], v1["name"], v1["kind"]) == (1, "draft", "named")
    assert v1["bytes"] > 0 and v1["created_at"].endswith("Z")
    await session.post(f"{base}/update", data=editor.type(" second"))
    status, v2 = await post(session, f"{base}/versions", json={"name": "final"})
    assert v2["id"] == 2

    async with session.get(f"{base}/versions") as resp:
        listed = (await resp.json())["versions"]
    assert [(v["id"], v["name"]) for v in listed] == [(2, "final"), (1, "draft")]
    assert await text_of(session, srv, doc, 1) == "first"
    async with session.get(f"{base}/versions/1") as resp:  # the binary state
        copy = Doc()
        copy.apply_update(await resp.read())
        assert str(copy.get("body", type=Text)) == "first"

    status, restored = await post(session, f"{base}/versions/1/restore")
    assert status == 200 and restored["restored"] == 1 and restored["seq"] > 0
    assert await text_of(session, srv, doc) == "first"
    before = restored["saved_as"]  # nothing is lost: the state it replaced is a version
    assert await text_of(session, srv, doc, before) == "first second"
    async with session.get(f"{base}/versions") as resp:
        kinds = {v["id"]: v["kind"] for v in (await resp.json())["versions"]}
    assert kinds[before] == "restore"
    # A client that had the document before the restore converges on it.
    late = Doc()
    late.apply_update(editor.doc.get_update())
    async with session.get(f"{base}") as resp:
        late.apply_update(await resp.read())
    assert str(late.get("body", type=Text)) == "first"
    async with session.get(f"{srv.http_url}/metrics") as resp:
        metrics = dict(line.rsplit(" ", 1) for line in (await resp.text()).splitlines()
                       if line.startswith("collab_document"))
    assert float(metrics["collab_document_versions_total"]) >= 3  # two named, one before
    assert float(metrics["collab_document_restores_total"]) >= 1


async def test_a_restore_makes_every_root_what_it_was(srv, session):
    base = f"{srv.http_url}/api/docs/many-roots"
    doc = Doc()
    doc["body"], doc["meta"] = Text("text"), Map({"title": "one", "tags": ["a"]})
    await session.post(f"{base}/update", data=doc.get_update())
    _, version = await post(session, f"{base}/versions", json={"name": "start"})
    sv = doc.get_state()
    with doc.transaction():
        doc["meta"]["title"] = "two"
        doc["meta"]["extra"] = 3
        doc["body"] += " more"
        doc["items"] = Map({"x": 1})
    await session.post(f"{base}/update", data=doc.get_update(sv))
    status, _ = await post(session, f"{base}/versions/{version['id']}/restore")
    assert status == 200
    async with session.get(f"{base}?format=json&text=body&map=meta") as resp:
        view = await resp.json()
    assert view["text"]["body"] == "text"
    assert view["map"]["meta"] == {"title": "one", "tags": ["a"]}
    async with session.get(f"{base}?format=json&map=items") as resp:
        assert (await resp.json())["map"]["items"] == {}


async def test_bad_version_requests_are_refused_with_a_code(srv, session):
    base = f"{srv.http_url}/api/docs/bad-versions"
    await session.post(f"{base}/update", data=Editor().type("x"))
    for body, code in [({"name": ""}, "invalid_name"), ({"name": 3}, "invalid_name"),
                       ({"title": "x"}, "invalid_body"), ([], "invalid_body")]:
        status, answer = await post(session, f"{base}/versions", json=body)
        assert (status, answer["error"]["code"]) == (400, code), body
    status, answer = await post(session, f"{base}/versions", data=b"{not json")
    assert (status, answer["error"]["code"]) == (400, "invalid_body")
    for path, code in [("/versions/9", 404), ("/versions/x", 400), ("/versions/-1", 400)]:
        async with session.get(f"{base}{path}") as resp:
            assert resp.status == code, path
    status, answer = await post(session, f"{base}/versions/9/restore")
    assert (status, answer["error"]["code"]) == (404, "version_not_found")


async def test_named_versions_past_the_limit_are_refused(srv, session):
    base = f"{srv.http_url}/api/docs/full-of-versions"
    await session.post(f"{base}/update", data=Editor().type("x"))
    for n in range(4):  # COLLAB_MAX_VERSIONS=4
        status, _ = await post(session, f"{base}/versions", json={"name": f"v{n}"})
        assert status == 201
    status, answer = await post(session, f"{base}/versions", json={"name": "one more"})
    assert (status, answer["error"]["code"]) == (409, "too_many_versions")
    status, answer = await post(session, f"{base}/versions/1/restore")  # no room to keep
    assert (status, answer["error"]["code"]) == (409, "too_many_versions")


async def test_deleting_a_document_deletes_its_versions(srv, session):
    base = f"{srv.http_url}/api/docs/deleted-with-versions"
    await session.post(f"{base}/update", data=Editor().type("x"))
    await post(session, f"{base}/versions", json={"name": "kept?"})
    assert (await session.delete(base)).status == 204
    async with session.get(f"{base}/versions") as resp:
        assert (await resp.json())["versions"] == []


async def test_automatic_versions_after_editing_and_at_hibernation(tmp_path, session):
    env = {"COLLAB_AUTO_VERSION_SECONDS": "0.3", "COLLAB_AUTO_VERSIONS_KEPT": "2",
           "COLLAB_IDLE_TIMEOUT": "1"}
    srv = ServerProcess(tmp_path / "auto.db", env=env).start()
    base = f"{srv.http_url}/api/docs/auto"
    try:
        editor = Editor()
        for n in range(8):  # editing for about 1.6 s: automatic versions as it goes
            await session.post(f"{base}/update", data=editor.type(f"<{n}>"))
            await asyncio.sleep(0.2)

        async def versions() -> list[dict]:
            async with session.get(f"{base}/versions") as resp:
                return (await resp.json())["versions"]

        made = await versions()
        assert made and {v["kind"] for v in made} == {"auto"}
        assert len(made) <= 2  # COLLAB_AUTO_VERSIONS_KEPT: the oldest went
        await session.post(f"{base}/update", data=editor.type("<last>"))

        async def hibernated_with_a_version() -> bool:
            newest = (await versions())[0]
            return await text_of(session, srv, "auto", newest["id"]) == str(editor.text)

        await until(hibernated_with_a_version)  # made when it went idle after the edit
        count = len(await versions())
        async with session.get(base) as resp:  # wakes it; no edit this time
            assert resp.status == 200
        await asyncio.sleep(2.5)  # past COLLAB_IDLE_TIMEOUT: it hibernated again
        assert len(await versions()) == count  # nothing new to keep
    finally:
        srv.stop()


def test_a_restore_while_stock_clients_type_converges(srv):
    require_node()
    result = run_node("restore_during_edits.mjs", "--url", srv.ws_url, "--http", srv.http_url,
                      "--doc", "restore-live")
    assert result["textA"] == result["textB"] == result["server"]
    assert result["server"].startswith("base;")  # the version's content, then what followed
    for marker in result["after"]:  # typed after the restore's answer: all kept
        assert marker in result["server"]
