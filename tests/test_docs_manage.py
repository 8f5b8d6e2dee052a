"""Managing documents over HTTP against a real server process (gateway/docs_api.py):
listing (`GET /api/docs`, paged, only what the caller may read), deleting (`DELETE`,
clients told: 4410 on /yjs, `doc.deleted` on /ws; nothing deleted comes back) and
replacing (`PUT`, a new incarnation), with bad input answered 4xx with a code."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text

from collab.auth import issue_token
from collab.errors import CloseCode
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.yclient import Editor, YClient

SECRET = "docs-manage-secret-long-enough-for-hs256"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("docs-manage") / "collab.db").start()
    yield proc
    proc.stop()


def state_of(text: str) -> bytes:
    doc = Doc()
    doc["body"] = Text(text)
    return doc.get_update()


async def text_of(session, srv: ServerProcess, doc: str) -> str:
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=body") as resp:
        return (await resp.json())["text"]["body"]


async def listing(session, srv: ServerProcess, query: str = "", headers=None) -> tuple[int, dict]:
    async with session.get(f"{srv.http_url}/api/docs{query}", headers=headers) as resp:
        return resp.status, await resp.json()


async def test_documents_are_listed_by_name_in_pages(srv, session):
    names = [f"list-{n:02d}" for n in range(7)]
    for name in reversed(names):
        resp = await session.post(f"{srv.http_url}/api/docs/{name}/update",
                                  data=Editor().type(name))
        assert resp.status == 200
    seen, cursor = [], None
    while True:
        query = "?prefix=list-&limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = await listing(session, srv, query)
        assert status == 200 and len(page["docs"]) <= 3
        seen += page["docs"]
        cursor = page["next"]
        if cursor is None:
            break
    assert [doc["name"] for doc in seen] == names
    first = seen[0]
    assert first["bytes"] > 0 and first["loaded"] is True
    assert first["created_at"].endswith("Z") and first["updated_at"] >= first["created_at"]


@pytest.mark.parametrize("query, code", [
    ("?limit=0", "invalid_limit"), ("?limit=1001", "invalid_limit"), ("?limit=x", "invalid_limit"),
    ("?sort=name", "invalid_query")])
async def test_bad_listing_requests_are_refused(srv, session, query, code):
    status, body = await listing(session, srv, query)
    assert status == 400 and body["error"]["code"] == code


async def test_delete_tells_every_client_and_the_content_never_comes_back(srv, session):
    doc = "delete-me"
    editor = Editor()
    assert (await session.post(f"{srv.http_url}/api/docs/{doc}/update",
                               data=editor.type("old"))).status == 200
    yjs = await YClient.connect(session, srv.http_url, doc)
    native = await NClient.connect(session, srv.http_url)
    await native.request("doc.subscribe", doc=doc, sv=Doc().get_state())

    resp = await session.delete(f"{srv.http_url}/api/docs/{doc}")
    assert resp.status == 204
    assert await yjs.closed_with() == CloseCode.DOCUMENT_DELETED
    event = await native.wait_for(lambda: next(
        (e for e in native.events if e["event"] == "doc.deleted"), None))
    assert event["doc"] == doc and event["epoch"] == 2
    assert not native.ws.closed  # one document of the socket went, not the socket

    _, page = await listing(session, srv, f"?prefix={doc}")
    assert page["docs"] == []
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json") as resp:
        assert (await resp.json())["roots"] == []
    again = await session.delete(f"{srv.http_url}/api/docs/{doc}")
    assert again.status == 404 and (await again.json())["error"]["code"] == "document_not_found"

    # The old copy's next edit, over HTTP and over /ws, is refused: 410.
    resp = await session.post(f"{srv.http_url}/api/docs/{doc}/update", data=editor.type("!"))
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "document_deleted"
    with pytest.raises(NativeError) as refused:
        await native.request("doc.subscribe", doc=doc, sv=editor.doc.get_state())
    assert refused.value.code == "document_deleted"
    # A fresh client writes the new document, which is listed again.
    assert (await session.post(f"{srv.http_url}/api/docs/{doc}/update",
                               data=Editor().type("new"))).status == 200
    assert await text_of(session, srv, doc) == "new"
    _status, page = await listing(session, srv, f"?prefix={doc}")
    assert [d["name"] for d in page["docs"]] == [doc]
    await native.close()
    async with session.get(f"{srv.http_url}/metrics") as resp:
        assert "collab_documents_deleted_total 1.0" in await resp.text()


async def test_put_replaces_a_document_with_imported_content(srv, session):
    doc = "replace-me"
    old = Editor()
    assert (await session.post(f"{srv.http_url}/api/docs/{doc}/update",
                               data=old.type("before"))).status == 200
    exported = await (await session.get(f"{srv.http_url}/api/docs/{doc}")).read()
    resp = await session.put(f"{srv.http_url}/api/docs/{doc}", data=state_of("imported"))
    assert resp.status == 200 and (await resp.json()) == {"doc": doc, "epoch": 2}
    assert await text_of(session, srv, doc) == "imported"
    # The replaced content's copies are refused; the new one's are served.
    resp = await session.post(f"{srv.http_url}/api/docs/{doc}/update", data=old.type("!"))
    assert resp.status == 410
    # An export put back (a restore from backup) is a new incarnation holding it.
    resp = await session.put(f"{srv.http_url}/api/docs/{doc}", data=exported)
    assert resp.status == 200 and (await resp.json())["epoch"] == 3
    assert await text_of(session, srv, doc) == "before"
    # PUT of a document that never existed creates it.
    resp = await session.put(f"{srv.http_url}/api/docs/fresh-import", data=state_of("x"))
    assert resp.status == 200 and await text_of(session, srv, "fresh-import") == "x"


@pytest.mark.parametrize("body, code", [(b"", "invalid_payload"),
                                        (b"\x01\x02\x03", "invalid_payload")])
async def test_put_of_something_that_is_not_a_document_is_refused(srv, session, body, code):
    doc = f"put-bad-{len(body)}"
    assert (await session.post(f"{srv.http_url}/api/docs/{doc}/update",
                               data=Editor().type("kept"))).status == 200
    resp = await session.put(f"{srv.http_url}/api/docs/{doc}", data=body)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == code
    assert await text_of(session, srv, doc) == "kept"  # nothing happened to it


async def test_with_auth_the_listing_shows_what_the_caller_may_read(tmp_path, session):
    srv = ServerProcess(tmp_path / "auth.db", env={"COLLAB_SECRET": SECRET}).start()
    try:
        admin = {"Authorization": f"Bearer {issue_token(SECRET, 'root', docs=['*'], admin=True)}"}
        for name in ("team-a/one", "team-a/two", "team-b/one", "zeta"):
            resp = await session.post(f"{srv.http_url}/api/docs/{name}/update",
                                      data=Editor().type(name), headers=admin)
            assert resp.status == 200
        reader = issue_token(SECRET, "ann", docs=["team-a/*"], read_only=True)
        status, page = await listing(session, srv, "?limit=1",
                                     {"Authorization": f"Bearer {reader}"})
        assert status == 200 and [d["name"] for d in page["docs"]] == ["team-a/one"]
        status, page = await listing(session, srv, f"?limit=5&cursor={page['next']}",
                                     {"Authorization": f"Bearer {reader}"})
        assert [d["name"] for d in page["docs"]] == ["team-a/two"] and page["next"] is None
        status, page = await listing(session, srv, "", admin)
        assert [d["name"] for d in page["docs"]] == ["team-a/one", "team-a/two", "team-b/one",
                                                     "zeta"]
        status, _ = await listing(session, srv)
        assert status == 401
        # Delete and replace need write access to the document.
        resp = await session.delete(f"{srv.http_url}/api/docs/team-a/one",
                                    headers={"Authorization": f"Bearer {reader}"})
        assert resp.status == 403
        writer = issue_token(SECRET, "bob", docs=["team-a/*"])
        resp = await session.delete(f"{srv.http_url}/api/docs/team-a/one",
                                    headers={"Authorization": f"Bearer {writer}"})
        assert resp.status == 204
    finally:
        srv.stop()
