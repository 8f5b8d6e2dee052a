"""Yjs v1 updates read struct by struct (protocol/yupdate.py).

Walked byte for byte (golden tables of updates written by npm yjs 13.6); merged
by concatenation, byte for byte what Yjs's own mergeUpdates writes, and for
random pycrdt edit histories the same document as pycrdt's merge. The value-depth
check: every update pycrdt writes is read through without complaint, a value
nested past the limit is refused whole (pycrdt crashes the process on one nested
30,000 deep), broken bytes are refused with InvalidPayload, never another
exception, and a real server refuses such an update on HTTP, /yjs and /ws and
lives on."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, merge_updates

from collab.errors import CloseCode, InvalidPayload
from collab.protocol.yupdate import (
    MAX_VALUE_DEPTH,
    ClientBlock,
    ContentRef,
    EmbeddedValue,
    UpdateFormatError,
    check_value_depth,
    concatenate,
    embedded_values,
    read_delete_set,
    read_layout,
    write_delete_set,
)
from collab.protocol.ywire import SyncUpdate, decode_state_vector, write_var_uint
from tests.nclient import NativeError, NClient
from tests.serverproc import ServerProcess
from tests.yclient import YClient

# Updates written by yjs 13.6.33 (client 7), one transaction each.
#: meta.set('k', {key0: 0, ..., key11: 11})
MAP_SET = (b"\x01\x01\x07\x00(\x01\x01m\x01k\x01v\x0c\x04key0}\x00\x04key1}\x01\x04key2}\x02"
           b"\x04key3}\x03\x04key4}\x04\x04key5}\x05\x04key6}\x06\x04key7}\x07\x04key8}\x08"
           b"\x04key9}\t\x05key10}\n\x05key11}\x0b\x00")
#: a.push([{key0..key11}, {z: 1, a: 2, m: [{y: 1, b: 2}]}]): one item, two values
ARRAY_PUSH = (b"\x01\x01\x07\x00\x08\x01\x01a\x02v\x0c\x04key0}\x00\x04key1}\x01\x04key2}\x02"
              b"\x04key3}\x03\x04key4}\x04\x04key5}\x05\x04key6}\x06\x04key7}\x07\x04key8}\x08"
              b"\x04key9}\t\x05key10}\n\x05key11}\x0bv\x03\x01z}\x01\x01a}\x02\x01mu\x01v\x02"
              b"\x01y}\x01\x01b}\x02\x00")
#: t.insert(0, 'hello'); t.format(0, 3, {link: {href: 'x', title: 'y', zz: 1, aa: 2}})
TEXT_FORMAT = (b"\x01\x04\x07\x00\x04\x01\x01t\x03hel\x84\x07\x02\x02loF\x07\x00\x04link"
               b"&{\"href\":\"x\",\"title\":\"y\",\"zz\":1,\"aa\":2}\xc6\x07\x02\x07\x03\x04link"
               b"\x04null\x00")
#: t.insertEmbed(0, {zz: 1, aa: 2, mm: 3})
TEXT_EMBED = b"\x01\x01\x07\x00\x05\x01\x01t\x16{\"zz\":1,\"aa\":2,\"mm\":3}\x00"
#: a.push([1.5, 0.1, 2**40, -3, 1e300, 'x', true, null, Uint8Array [1, 2]])
SCALARS = (b"\x01\x02\x07\x00\x08\x01\x01a\x08|?\xc0\x00\x00{?\xb9\x99\x99\x99\x99\x99\x9a"
           b"|S\x80\x00\x00}C{~7\xe4<\x88\x00u\x9cw\x01xx~\x83\x07\x07\x02\x01\x02\x00")
#: an XmlElement 'p' in fragment 'x' with attributes zz='a', aa='b'
XML = (b"\x01\x03\x07\x00\x07\x01\x01x\x03\x01p(\x00\x07\x00\x02zz\x01w\x01a(\x00\x07\x00"
       b"\x02aa\x01w\x01b\x00")



ANY, EMBED, FORMAT = ContentRef.ANY, ContentRef.EMBED, ContentRef.FORMAT


@pytest.mark.parametrize("update, expected", [
    (MAP_SET, [EmbeddedValue(7, 0, ANY, 11, 99, True)]),
    (ARRAY_PUSH, [EmbeddedValue(7, 0, ANY, 9, 97, True),
                  EmbeddedValue(7, 1, ANY, 97, 121, True)]),
    # 'hel' (clocks 0-2) and 'lo' (3-4): the text split by its format markers, the
    # opening one (5) with the object, the closing one (6) with null.
    (TEXT_FORMAT, [EmbeddedValue(7, 5, FORMAT, 26, 65, True),
                   EmbeddedValue(7, 6, FORMAT, 75, 80, False)]),
    (TEXT_EMBED, [EmbeddedValue(7, 0, EMBED, 8, 31, True)]),
    # 1.5 (float32), 0.1 (float64), 2**40 (float32), -3 (varInt), 1e300, 'x', true,
    # null; then the Uint8Array, a binary item at clock 8.
    (SCALARS, [EmbeddedValue(7, i, ANY, start, end, False) for i, (start, end) in enumerate(
        [(9, 14), (14, 23), (23, 28), (28, 30), (30, 39), (39, 42), (42, 43), (43, 44)])]),
    # The element (clock 0), then its attributes: Any strings keyed by name.
    (XML, [EmbeddedValue(7, 1, ANY, 19, 22, False), EmbeddedValue(7, 2, ANY, 30, 33, False)]),
])
def test_golden_updates_walk_to_their_values(update, expected):
    assert embedded_values(update) == expected



# Two writers in yjs 13.6.33: A (client 1) and B (client 2), one transaction each.
#: A: m.set('k', {zz: 1, aa: 2}), clock 0
A1 = b"\x01\x01\x01\x00(\x01\x01m\x01k\x01v\x02\x02zz}\x01\x02aa}\x02\x00"
#: B: t.insert(0, 'hi'), clocks 0-1
B1 = b"\x01\x01\x02\x00\x04\x01\x01t\x02hi\x00"
#: A: l.push([{yy: 1, bb: 2}, 'x']), clocks 1-2
A2 = b"\x01\x01\x01\x01\x08\x01\x01l\x02v\x02\x02yy}\x01\x02bb}\x02w\x01x\x00"
#: A: m.delete('k'): no struct, deletes clock 0
A3 = b"\x00\x01\x01\x01\x00\x01"
#: A: l.push(['y']), clock 3
A4 = b"\x01\x01\x01\x03\x88\x01\x02\x01w\x01y\x00"


@pytest.mark.parametrize("updates, expected", [
    # Y.mergeUpdates([A1, B1, A2]): clients in descending order, A's two runs in one block.
    ([A1, B1, A2], b"\x02\x01\x02\x00\x04\x01\x01t\x02hi\x02\x01\x00(\x01\x01m\x01k\x01v"
                   b"\x02\x02zz}\x01\x02aa}\x02\x08\x01\x01l\x02v\x02\x02yy}\x01\x02bb}"
                   b"\x02w\x01x\x00"),
    # Y.mergeUpdates([A1, A4]): clocks 1-2 are missing, a Skip struct of 2 stands for them.
    ([A1, A4], b"\x01\x03\x01\x00(\x01\x01m\x01k\x01v\x02\x02zz}\x01\x02aa}\x02\n\x02"
               b"\x88\x01\x02\x01w\x01y\x00"),
    # Y.mergeUpdates([A2, A3, B1]): the delete set of A3 at the end.
    ([A2, A3, B1], b"\x02\x01\x02\x00\x04\x01\x01t\x02hi\x01\x01\x01\x08\x01\x01l\x02v"
                   b"\x02\x02yy}\x01\x02bb}\x02w\x01x\x01\x01\x01\x00\x01"),
])
def test_concatenation_is_what_yjs_merge_updates_writes(updates, expected):
    assert concatenate([(update, read_layout(update)) for update in updates]) == expected


def test_overlapping_updates_are_left_to_a_real_merge():
    assert concatenate([(A2, read_layout(A2)), (A2, read_layout(A2))]) is None
    assert concatenate([(A1, read_layout(A1)), (A1, read_layout(A1))]) is None


def test_layout_blocks_and_delete_set():
    layout = read_layout(A2)
    assert layout.blocks == [ClientBlock(1, 1, 3, 1, 4, len(A2) - 1)]
    assert layout.delete_set == len(A2) - 1
    layout = read_layout(A3)
    assert layout.blocks == [] and read_delete_set(A3, layout.delete_set) == {1: [(0, 1)]}


def test_delete_sets_join_ranges():
    ranges = {5: [(10, 2), (0, 3), (3, 1), (11, 4)], 9: [], 7: [(1, 1)]}
    encoded = write_delete_set(ranges)
    assert encoded == b"\x02\x07\x01\x01\x01\x05\x02\x00\x04\x0a\x05"
    assert read_delete_set(encoded, 0) == {7: [(1, 1)], 5: [(0, 4), (10, 5)]}


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_raise_only_update_format_error(data):
    try:
        layout = read_layout(data)
        read_delete_set(data, layout.delete_set)
    except UpdateFormatError:
        pass


# -- random edit histories -------------------------------------------------------------

histories = st.lists(st.tuples(
    st.integers(0, 3),  # which client
    st.sampled_from(["text", "untext", "set", "unset", "push", "delete"]),
    st.integers(0, 1000),
), min_size=1, max_size=30)


def edit_history(steps, syncs) -> list[bytes]:
    """Four pycrdt clients editing text, a map and an array (objects included), some
    syncing now and then, so updates reference each other's items and delete them."""
    clients = [Doc() for _ in range(4)]
    updates: list[bytes] = []
    for doc in clients:
        doc.observe(lambda event, sink=updates: sink.append(event.update))
    for (who, op, where), sync in zip(steps, syncs, strict=True):
        doc = clients[who]
        text, meta, items = (doc.get("body", type=Text), doc.get("meta", type=Map),
                             doc.get("items", type=Array))
        if op == "text":
            text.insert(where % (len(text) + 1), f"w{where}")
        elif op == "untext" and len(text):
            start = where % len(text)
            del text[start:min(len(text), start + 3)]
        elif op == "set":
            meta[f"k{where % 3}"] = {"zz": where, "aa": [where, {"y": 1, "b": 2}]}
        elif op == "unset" and len(meta):
            del meta[sorted(meta.keys())[where % len(meta)]]
        elif op == "push":
            items.insert(where % (len(items) + 1), {"q": where, "c": 1})
        elif op == "delete" and len(items):
            del items[where % len(items)]
        if sync is not None and sync[0] != sync[1]:
            source, target = clients[sync[0]], clients[sync[1]]
            target.apply_update(source.get_update(target.get_state()))
    return updates


def document(update: bytes) -> tuple:
    doc = Doc()
    doc.apply_update(update)
    return (str(doc.get("body", type=Text)), doc.get("meta", type=Map).to_py(),
            doc.get("items", type=Array).to_py(), decode_state_vector(doc.get_state()))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories, st.data())
def test_concatenation_is_the_same_document_as_pycrdts_merge(steps, data):
    """Any run of consecutive updates (as one drain would see them), concatenated:
    where no two overlap, a fresh pycrdt Doc built from it equals one built from
    pycrdt's merge, and each update's struct bytes appear in it unchanged."""
    syncs = data.draw(st.lists(st.one_of(st.none(), st.tuples(st.integers(0, 3),
                                                                st.integers(0, 3))),
                               min_size=len(steps), max_size=len(steps)))
    updates = edit_history(steps, syncs)
    if not updates:
        return
    start = data.draw(st.integers(0, len(updates) - 1))
    batch = updates[start:start + data.draw(st.integers(1, 12))]
    layouts = [(update, read_layout(update)) for update in batch]
    merged = concatenate(layouts)
    if merged is None:  # two overlap: only when a client re-sent what another wrote
        assert len(batch) > 1
        return
    assert document(merged) == document(merge_updates(*batch))
    for update, layout in layouts:
        for block in layout.blocks:
            assert update[block.start:block.end] in merged


# -- the value-depth check --------------------------------------------------------


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

def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                         max_size=3)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.binary(max_size=8),
    _containers, max_leaves=12)
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
        read_layout(update, max_depth=MAX_VALUE_DEPTH)  # the full walk, not the shortcut
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
