"""The value-depth check of Yjs updates (protocol/yupdate.py): every update pycrdt
writes is read through without complaint, a value nested past the limit is refused
whole (pycrdt crashes the process on one nested 30,000 deep), broken bytes are
refused with InvalidPayload, never another exception, and a real server refuses
such an update on HTTP, /yjs and /ws and lives on."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.errors import CloseCode, InvalidPayload
from collab.protocol.yupdate import MAX_VALUE_DEPTH, _walk_update, check_value_depth
from collab.protocol.ywire import SyncUpdate, write_var_uint
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.yclient import YClient


def nested_value(depth: int, kind: str = "list") -> bytes:
    """A Yjs v1 update setting key "k" of root map "m" to a value `depth` deep: a
    list in a list... (or a map in a map...) around one null. Built by hand: pycrdt
    itself cannot encode a value that deep."""
    level = b"\x75\x01" if kind == "list" else b"\x76\x01\x01k"
    item = b"\x28\x01\x01m\x01k" + b"\x01" + level * depth + b"\x7e"  # ContentAny, 1 value
    return b"\x01\x01" + write_var_uint(7) + b"\x00" + item + b"\x00"


def nested_in_pycrdt(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("kind", ["list", "map"])
def test_values_up_to_the_limit_pass_and_deeper_ones_are_refused(kind):
    fits = nested_value(MAX_VALUE_DEPTH, kind)
    check_value_depth(fits)
    doc = Doc()
    doc.apply_update(fits)  # what passes is an update pycrdt reads
    with pytest.raises(InvalidPayload, match=f"deeper than {MAX_VALUE_DEPTH}"):
        check_value_depth(nested_value(MAX_VALUE_DEPTH + 1, kind))
    with pytest.raises(InvalidPayload):
        check_value_depth(nested_value(100_000, kind))


def test_the_bomb_is_what_crashes_pycrdt():
    """Why the check exists: pycrdt dies (SIGSEGV) applying this update."""
    script = ("import sys; from pycrdt import Doc; "
              "Doc().apply_update(sys.stdin.buffer.read())")
    done = subprocess.run([sys.executable, "-c", script], input=nested_value(100_000),
                          capture_output=True, timeout=60)
    assert done.returncode < 0  # killed by a signal, no Python exception to catch


def test_a_value_as_deep_as_pycrdt_writes_it():
    doc = Doc()
    doc["m"] = Map({"k": nested_in_pycrdt(MAX_VALUE_DEPTH)})
    check_value_depth(doc.get_update())
    deeper = Doc()
    deeper["m"] = Map({"k": nested_in_pycrdt(MAX_VALUE_DEPTH + 1)})
    with pytest.raises(InvalidPayload):
        check_value_depth(deeper.get_update())


# -- every update pycrdt writes reads through ---------------------------------------

values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=12)
edits = st.lists(st.tuples(st.sampled_from(["text", "format", "embed", "map", "array",
                                            "nested", "xml", "subdoc", "delete"]),
                           st.text(max_size=6), values), min_size=1, max_size=12)


def apply_edit(doc: Doc, op: str, text: str, value) -> None:
    body = doc.get("body", type=Text)
    if op == "text":
        body.insert(0, text or "x")
    elif op == "format" and len(body):
        body.format(0, len(body), {"bold": True, "link": text})
    elif op == "embed":
        body.insert_embed(0, {"image": text})
    elif op == "map":
        doc.get("meta", type=Map)[text] = value
    elif op == "array":
        doc.get("items", type=Array).append(value)
    elif op == "nested":
        doc.get("items", type=Array).append(Map({"inner": Array([Text(text)])}))
    elif op == "xml":
        doc.get("prose", type=XmlFragment).children.append(
            XmlElement("p", {"class": text}, [XmlText(text)]))
    elif op == "subdoc":
        doc.get("meta", type=Map)["sub"] = Doc()
    elif op == "delete" and len(body):
        del body[0:1]


@settings(max_examples=200, deadline=None)
@given(edits)
def test_every_update_pycrdt_writes_reads_through(ops):
    doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for op, text, value in ops:
        apply_edit(doc, op, text, value)
    for update in [*updates, doc.get_update()]:
        _walk_update(update, MAX_VALUE_DEPTH)  # the full walk, not the shortcut
        check_value_depth(update)


# -- broken bytes -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_broken_updates_are_invalid_payload_and_nothing_else(data):
    base = nested_value(MAX_VALUE_DEPTH + 5)
    cut = data.draw(st.integers(0, len(base)))
    noise = data.draw(st.binary(max_size=8))
    broken = base[:cut] + noise + base[cut + len(noise):]
    try:
        check_value_depth(broken, max_depth=0)  # always the full walk
    except InvalidPayload:
        pass


# -- on every path into a real server -----------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("yupdate") / "collab.db").start()
    yield proc
    proc.stop()


async def test_a_nested_bomb_is_refused_on_every_path_and_the_server_lives(srv, session):
    bomb = nested_value(100_000)
    async with session.post(f"{srv.http_url}/api/docs/bombed/update", data=bomb) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_payload"
    yjs = await YClient.connect(session, srv.http_url, "bombed")
    await yjs.send(SyncUpdate(bomb))
    assert await yjs.closed_with() == CloseCode.INVALID_PAYLOAD
    for json_mode in (False, True):
        client = await NClient.connect(session, srv.http_url, json=json_mode)
        await client.request("doc.subscribe", doc="bombed")
        with pytest.raises(NativeError) as refused:
            await client.request("doc.update", doc="bombed", update=bomb)
        assert refused.value.code == "invalid_payload"
        await client.close()
    assert srv.proc.poll() is None  # alive: each of these used to kill it
    async with session.get(f"{srv.http_url}/api/docs/bombed?format=json") as resp:
        assert (await resp.json())["roots"] == []
    fits = nested_value(MAX_VALUE_DEPTH)
    async with session.post(f"{srv.http_url}/api/docs/bombed/update", data=fits) as resp:
        assert resp.status == 200
