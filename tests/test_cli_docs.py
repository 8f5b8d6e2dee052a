"""`collab docs ls|export|import|rm|compact` (cli_docs.py) as a subprocess: every verb
on SQLite and Postgres written directly, a round trip export → rm → import, paging,
the exit status and message of every refusal; then with a real server on the same
SQLite file: compaction under it, a stock (pycrdt) client's document exported and
imported, and what a server that has the document loaded does after `rm`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from pycrdt import Array, Doc, Map, Text

from collab import cli_docs
from collab.actors import offline
from collab.actors.incarnations import Retired
from collab.actors.ydoc import doc_from_storage
from collab.config import Settings
from collab.errors import CloseCode, DocumentDeleted
from collab.protocol import ywire
from collab.protocol.yupdate import MAX_VALUE_DEPTH
from collab.storage import open_store
from collab.storage.base import AppendUpdate, Store
from collab.storage.sqlite import SQLiteStore
from tests.serverproc import TIMEOUT
from tests.test_interop_pycrdt import pycrdt_client, until
from tests.test_yupdate import nested_value
from tests.yclient import Editor, YClient

#: Seconds the write after an offline `rm` should take at most to be answered:
#: one refused commit, not the 30 s call timeout (the test below).
PROMPT_ANSWER = 5.0


def collab_docs(*args: str, url: str, stdin: bytes | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m collab docs ARGS --database-url URL`; stdout as bytes (an export is
    binary), stderr as text."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "DATABASE_URL")}
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-m", "collab", "docs", *args,
                             "--database-url", url], input=stdin, capture_output=True,
                            env=full_env, timeout=TIMEOUT)
    result.stderr = result.stderr.decode()
    return result


def answer(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def write_rows(url: str, rows: dict[str, list[bytes]]) -> None:
    """Store each document's updates as its log rows 1, 2..., as a server would."""
    store = open_store(Settings(database_url=url))
    await store.open()
    try:
        await store.write([AppendUpdate(doc, seq, data) for doc, updates in rows.items()
                           for seq, data in enumerate(updates, 1)])
    finally:
        await store.close()


async def stored(url: str, doc: str):
    store = open_store(Settings(database_url=url))
    await store.open()
    try:
        return await store.load_document(doc)
    finally:
        await store.close()


def text_of(update: bytes, root: str = "body") -> str:
    doc = Doc()
    doc.apply_update(update)
    return str(doc.get(root, type=Text))


def typed(*words: str) -> tuple[Editor, list[bytes]]:
    editor = Editor()
    return editor, [editor.type(word) for word in words]


# -- on the store, no server ----------------------------------------------------------


async def test_export_rm_import_round_trip_on_sqlite_and_postgres(store_url, tmp_path):
    editor, rows = typed("hello", " world")
    other = typed("b")[1]  # once: its size depends on its random client id
    await write_rows(store_url, {"notes/a": rows, "notes/b": other})

    listed = collab_docs("ls", url=store_url)
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.decode().splitlines()]
    assert [(name, int(size)) for name, size, _ in lines] == [
        ("notes/a", sum(map(len, rows))), ("notes/b", len(other[0]))]
    assert all(when.endswith("Z") for _, _, when in lines)

    exported = collab_docs("export", "notes/a", url=store_url)
    assert exported.returncode == 0 and text_of(exported.stdout) == "hello world"
    saved = tmp_path / "a.yjs"
    assert collab_docs("export", "notes/a", "-o", str(saved), url=store_url).stdout == b""
    assert saved.read_bytes() == exported.stdout

    assert answer(collab_docs("rm", "notes/a", url=store_url)) == {"doc": "notes/a", "epoch": 2}
    gone = await stored(store_url, "notes/a")
    assert not offline.exists(gone) and gone.epoch == 2
    # The deleted content's copies are refused: its next edit refers to it.
    with pytest.raises(DocumentDeleted):
        Retired(gone.retired).check_update(editor.type("!"), {})
    assert b"notes/a" not in collab_docs("ls", url=store_url).stdout
    again = collab_docs("export", "notes/a", url=store_url)
    assert (again.returncode, again.stdout) == (1, b"")
    assert again.stderr.strip() == "collab: document 'notes/a' does not exist"

    assert answer(collab_docs("import", "notes/a", str(saved), url=store_url)) == {
        "doc": "notes/a", "epoch": 3}
    assert collab_docs("export", "notes/a", url=store_url).stdout == exported.stdout
    back = await stored(store_url, "notes/a")
    assert (back.epoch, back.updates) == (3, [(1, exported.stdout)])
    # IDs the new incarnation holds are allowed again: the import brought them back.
    holds = ywire.decode_state_vector(doc_from_storage(back).get_state())
    Retired(back.retired).check_update(exported.stdout, holds)
    # From stdin, replacing what is there.
    assert answer(collab_docs("import", "notes/b", "-", url=store_url,
                              stdin=exported.stdout))["epoch"] == 2
    assert text_of(collab_docs("export", "notes/b", url=store_url).stdout) == "hello world"


async def test_compact_folds_the_log_as_the_server_does(store_url):
    _, rows = typed("one", " two", " three")
    await write_rows(store_url, {"c/a": rows, "c/b": typed("b")[1]})
    before = collab_docs("export", "c/a", url=store_url).stdout

    folded = answer(collab_docs("compact", "c/a", url=store_url))
    assert folded["before"] == {"log_rows": 3, "bytes": sum(map(len, rows))}
    after = await stored(store_url, "c/a")
    assert (after.updates, after.snapshot_seq) == ([], 3)
    assert folded["after"] == {"log_rows": 0, "bytes": len(after.snapshot)}
    assert collab_docs("export", "c/a", url=store_url).stdout == before
    # Nothing left to fold: said, and nothing written.
    assert answer(collab_docs("compact", "c/a", url=store_url))["after"] == folded["after"]

    every = collab_docs("compact", "--all", url=store_url)
    assert every.returncode == 0, every.stderr
    lines = [json.loads(line) for line in every.stdout.splitlines()]
    assert [(line["doc"], line["after"]["log_rows"]) for line in lines] == [
        ("c/a", 0), ("c/b", 0)]
    assert lines[1]["before"]["log_rows"] == 1
    assert (await stored(store_url, "c/b")).updates == []


async def test_ls_pages_through_names_with_a_prefix(store_url):
    names = [f"page/{n:02d}" for n in range(7)]
    await write_rows(store_url, {name: typed(name)[1] for name in [*names, "other"]})
    seen, after = [], None
    while True:
        cursor = ("--after", after) if after else ()
        page = answer(collab_docs("ls", "--json", "--prefix", "page/", "--limit", "3", *cursor,
                                  url=store_url))
        assert len(page["docs"]) <= 3
        assert all(set(doc) == {"name", "bytes", "created_at", "updated_at"}
                   for doc in page["docs"])
        seen += [doc["name"] for doc in page["docs"]]
        after = page["next"]
        if after is None:
            break
    assert seen == names
    plain = collab_docs("ls", "--prefix", "page/", "--limit", "2", url=store_url)
    assert [line.split("\t")[0] for line in plain.stdout.decode().splitlines()] == names[:2]
    assert plain.stderr.strip() == "collab: more documents: the next page is --after page/01"
    last = collab_docs("ls", "--prefix", "page/", "--after", "page/05", url=store_url)
    assert (last.stdout.decode().split("\t")[0], last.stderr) == ("page/06", "")


@pytest.mark.parametrize(("args", "status", "says"), [
    (("export", "missing"), 1, "document 'missing' does not exist"),
    (("rm", "missing"), 1, "document 'missing' does not exist"),
    (("compact", "missing"), 1, "document 'missing' does not exist"),
    (("ls", "--limit", "0"), 2, "limit must be an integer from 1 to 1000"),
    (("ls", "--limit", "1001"), 2, "limit must be an integer from 1 to 1000"),
    (("ls", "--limit", "many"), 2, "invalid int value"),  # argparse's own refusal
    (("rm", "../up"), 2, "docs rm: invalid document name"),
    (("export",), 2, "the following arguments are required: name"),
    (("compact",), 2, "one of the arguments name --all is required"),
    (("compact", "x", "--all"), 2, "not allowed with argument name"),
    (("import", "new", "{garbage}"), 2, "docs import: update rejected"),
    (("import", "new", "{empty}"), 2, "docs import: empty body"),
    (("import", "new", "{deep}"), 2, f"deeper than {MAX_VALUE_DEPTH}"),
    (("import", "new", "{nowhere}"), 2, "cannot read"),
])
async def test_refusals_exit_with_a_status_and_say_why(tmp_path, args, status, says):
    url = f"sqlite:///{tmp_path}/x.db"
    await write_rows(url, {"kept": typed("kept")[1]})
    files = {"garbage": b"\x07not a yjs update", "empty": b"",
             "deep": nested_value(MAX_VALUE_DEPTH + 1)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    args = tuple(arg.format(**{name: tmp_path / name for name in [*files, "nowhere"]})
                 for arg in args)
    result = collab_docs(*args, url=url)
    assert (result.returncode, result.stdout) == (status, b"")
    assert says in result.stderr, result.stderr
    assert not offline.exists(await stored(url, "new"))  # nothing was imported
    assert text_of(collab_docs("export", "kept", url=url).stdout) == "kept"


async def test_an_import_past_the_size_quota_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/q.db"
    await write_rows(url, {"kept": typed("kept")[1]})
    big = tmp_path / "big.yjs"
    big.write_bytes(typed("x" * 100)[1][0])
    result = collab_docs("import", "kept", str(big), url=url,
                         env={"COLLAB_MAX_DOCUMENT_BYTES": "64"})
    assert result.returncode == 2
    assert f"{big.stat().st_size} bytes is past its size quota of 64 bytes" in result.stderr
    assert answer(collab_docs("import", "kept", str(big), url=url))["epoch"] == 2


def test_a_missing_sqlite_file_is_not_created(tmp_path):
    result = collab_docs("ls", url=f"sqlite:///{tmp_path}/typo.db")
    assert result.returncode == 1
    assert f"no SQLite database at {tmp_path}/typo.db" in result.stderr
    assert not (tmp_path / "typo.db").exists()


class ReplacedMeanwhile(SQLiteStore):
    """A SQLite store where, once, a server replaces the document between the
    command's read and its write (as `PUT /api/docs/<doc>` would)."""

    raced = False

    async def load_document(self, doc: str):
        found = await super().load_document(doc)
        if not self.raced:
            self.raced = True
            await self.write([offline.ending(doc, found, typed("server's")[1][0])])
        return found


async def test_a_document_replaced_meanwhile_is_read_again(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/r.db"
    first, rows = typed("first")
    await write_rows(url, {"raced": rows})
    store: Store = ReplacedMeanwhile(url)
    await store.open()
    try:
        await cli_docs._end_incarnation(store, "raced", None)
        gone = await store.load_document("raced")
    finally:
        await store.close()
    # Refused once (DocumentReplaced), then deleted the server's incarnation (2),
    # retiring what both held.
    assert json.loads(capsys.readouterr().out) == {"doc": "raced", "epoch": 3}
    assert gone.epoch == 3 and not offline.exists(gone)
    retired = ywire.decode_state_vector(gone.retired)
    assert retired[first.doc.client_id] == len("first") and len(retired) == 2


# -- with a server on the same store ---------------------------------------------------


async def test_compact_under_a_running_server_loses_nothing(server_factory, session):
    srv = server_factory("compact")
    editor = Editor()
    for word in ("a", "b", "c"):
        resp = await session.post(f"{srv.http_url}/api/docs/live/update", data=editor.type(word))
        assert resp.status == 200
    folded = answer(collab_docs("compact", "live", url=srv.database_url))
    assert folded["before"]["log_rows"] == 3 and folded["after"]["log_rows"] == 0
    # The server goes on writing its log after the snapshot, and reads it back.
    resp = await session.post(f"{srv.http_url}/api/docs/live/update", data=editor.type("d"))
    assert resp.status == 200
    assert srv.stop() == 0
    srv = server_factory("compact")
    async with session.get(f"{srv.http_url}/api/docs/live?format=json&text=body") as resp:
        assert (await resp.json())["text"]["body"] == "abcd"


def content_of(update: bytes) -> dict:
    """The roots a PyClient writes (tests/test_interop_pycrdt.py), as JSON."""
    doc = Doc()
    doc.apply_update(update)
    return {"text": str(doc.get("body", type=Text)), "meta": doc.get("meta", type=Map).to_py(),
            "items": doc.get("items", type=Array).to_py()}


async def test_a_pycrdt_clients_document_exported_and_imported(server_factory, session):
    source = server_factory("source")
    async with pycrdt_client(session, source.ws_url, "shared/plan", "py") as client:
        client.text.insert(0, "stock client text")
        client.meta["owner"] = "ann"
        client.items.extend([1, "two", {"three": 3}])
        wanted = {"text": str(client.text), "meta": client.meta.to_py(),
                  "items": client.items.to_py()}
        exported = b""

        def stored_all() -> bool:  # committed: in the store, where the command reads
            nonlocal exported
            exported = collab_docs("export", "shared/plan", url=source.database_url).stdout
            return bool(exported) and content_of(exported) == wanted
        await until(stored_all, "the client's edits to be committed")
    # The bytes the server exports for the same document.
    async with session.get(f"{source.http_url}/api/docs/shared/plan") as resp:
        assert await resp.read() == exported
    async with session.get(f"{source.http_url}/api/docs") as resp:
        listed = await resp.json()
    for doc in listed["docs"]:
        assert doc.pop("loaded") is True  # the one field the store does not know
    assert answer(collab_docs("ls", "--json", url=source.database_url)) == listed

    target = server_factory("target")
    assert answer(collab_docs("import", "copy/plan", "-", url=target.database_url,
                              stdin=exported)) == {"doc": "copy/plan", "epoch": 2}
    async with session.get(f"{target.http_url}/api/docs/copy/plan",
                           params=[("format", "json"), ("text", "body"), ("map", "meta"),
                                   ("array", "items")]) as resp:
        assert resp.status == 200
        view = await resp.json()
    assert view == {"doc": "copy/plan", "text": {"body": wanted["text"]},
                    "map": {"meta": wanted["meta"]}, "array": {"items": wanted["items"]}}


async def test_rm_under_a_server_that_has_the_document_loaded(server_factory, session):
    """The server does not see the deletion until its next write for the document
    is refused (the incarnation changed): until then it serves the deleted content;
    then it stops the document, its clients reconnect and are refused (their copy
    holds deleted content), and the deleted content never comes back."""
    srv = server_factory("loaded")
    url = f"{srv.http_url}/api/docs/held"
    editor = Editor()
    assert (await session.post(f"{url}/update", data=editor.type("secret"))).status == 200
    client = await YClient.connect(session, srv.http_url, "held")
    await client.send(ywire.SyncStep1(ywire.EMPTY_STATE_VECTOR))
    await client.recv_until(lambda m: isinstance(m, ywire.SyncStep2))

    assert answer(collab_docs("rm", "held", url=srv.database_url))["epoch"] == 2
    async with session.get(f"{url}?format=json&text=body") as resp:
        assert (await resp.json())["text"]["body"] == "secret"  # stale: still in memory
    async with session.get(f"{srv.http_url}/api/docs?prefix=held") as resp:
        assert (await resp.json())["docs"] == []  # the listing reads the store

    write = asyncio.ensure_future(session.post(f"{url}/update", data=editor.type(" more")))
    assert await client.closed_with() == CloseCode.SERVICE_RESTART  # the document stopped
    async with session.get(f"{url}?format=json") as resp:
        assert (await resp.json())["roots"] == []  # loaded again: the new incarnation
    again = await YClient.connect(session, srv.http_url, "held")
    await again.send(ywire.SyncStep1(editor.doc.get_state()))
    assert await again.closed_with() == CloseCode.DOCUMENT_DELETED
    # The write that found the document deleted is not acknowledged (answered at
    # once: the test below).
    resp = await write
    assert resp.status != 200, await resp.text()
    fresh = Editor()
    assert (await session.post(f"{url}/update", data=fresh.type("new"))).status == 200
    async with session.get(f"{url}?format=json&text=body") as resp:
        assert (await resp.json())["text"]["body"] == "new"
    assert "secret" not in content_of(
        collab_docs("export", "held", url=srv.database_url).stdout)["text"]


async def test_the_write_after_an_offline_rm_is_answered_promptly(server_factory, session):
    """The stopping document settles the HTTP caller whose write it found refused (it
    used to drop that completion, and the caller waited 30 s for a 504)."""
    # A short shutdown: the server's handler still waits for the reply at teardown.
    srv = server_factory("prompt", env={"COLLAB_SHUTDOWN_TIMEOUT": "1"})
    url = f"{srv.http_url}/api/docs/held"
    editor = Editor()
    assert (await session.post(f"{url}/update", data=editor.type("secret"))).status == 200
    assert answer(collab_docs("rm", "held", url=srv.database_url))["epoch"] == 2
    started = time.monotonic()
    async with asyncio.timeout(PROMPT_ANSWER):
        resp = await session.post(f"{url}/update", data=editor.type(" more"))
    assert time.monotonic() - started < PROMPT_ANSWER
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "document_replaced"
