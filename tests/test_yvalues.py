"""Embedded JSON values in Yjs v1 updates: walked byte for byte (golden tables of
updates written by npm yjs 13.6), compared regardless of key order, and restored
to their writers' bytes in whatever pycrdt encodes: merges, diffs, whole
documents and compacted snapshots, for random edit histories."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from collab.actors.ydoc import compacted_snapshot, merge_as_written, merge_many
from collab.protocol.yvalues import (
    ContentRef,
    EmbeddedValue,
    UpdateFormatError,
    WriterBytes,
    embedded_values,
    same_update,
    same_value,
)
from collab.protocol.ywire import decode_state_vector

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


@pytest.mark.parametrize("update", [MAP_SET, ARRAY_PUSH, TEXT_FORMAT, TEXT_EMBED])
def test_pycrdt_reorders_and_restore_gives_the_writers_bytes(update):
    doc = Doc()
    doc.apply_update(update)
    writers = WriterBytes()
    writers.note(update)
    reencoded = doc.get_update()
    assert reencoded != update  # the bug: yrs lists the keys in hash order...
    assert same_update(reencoded, update)  # ...of the same values
    assert writers.restore(reencoded) == update
    assert writers.restore(merge_many([update, b"\x00\x00"])) == update


@pytest.mark.parametrize("update", [SCALARS, XML])
def test_updates_without_objects_pass_through(update):
    writers = WriterBytes()
    writers.note(update)
    assert writers.values == 0
    doc = Doc()
    doc.apply_update(update)
    assert doc.get_update() == update
    assert writers.restore(doc.get_update()) == update


def test_same_value_ignores_key_order_and_nothing_else():
    a = b"v\x02\x01a}\x01\x01b}\x02"  # {a: 1, b: 2}
    assert same_value(ANY, a, b"v\x02\x01b}\x02\x01a}\x01")
    assert not same_value(ANY, a, b"v\x02\x01b}\x01\x01a}\x02")  # values swapped
    assert not same_value(ANY, b"v\x01\x01ax", b"v\x01\x01a}\x01")  # true is not 1
    assert same_value(ANY, b"}\x03", b"|@@\x00\x00")  # 3 as varInt and as float32
    assert not same_value(ANY, a, a[:-1])  # truncated
    assert not same_value(ANY, a, a + b"\x00")  # trailing bytes
    assert same_value(EMBED, b'\x0d{"a":1,"b":2}', b'\x0d{"b":2,"a":1}')
    assert not same_value(EMBED, b'\x0d{"a":1,"b":2}', b'\x10{"b":true,"a":1}')
    assert not same_value(EMBED, b'\x0d{"a":1,"b":2}', b"\x03{{{")
    deep = b"u\x01" * 5000 + b"~"  # [[[...null...]]], deeper than comparisons go
    assert not same_value(ANY, deep, deep[:-1] + b"\x7f")


def test_a_forged_duplicate_id_keeps_pycrdts_bytes():
    """A second update claiming an ID the writer already filled with another value:
    restore never swaps in bytes of a different value."""
    writers = WriterBytes()
    writers.note(MAP_SET)
    forged = MAP_SET.replace(b"key0}\x00", b"key0}\x05")
    assert writers.restore(forged) == forged
    writers.note(forged)  # the first encoding seen for an ID stays
    doc = Doc()
    doc.apply_update(MAP_SET)
    assert writers.restore(doc.get_update()) == MAP_SET


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_raise_anything_else(data):
    try:
        embedded_values(data)
    except UpdateFormatError:
        pass
    writers = WriterBytes()
    writers.note(data)
    writers.note(MAP_SET)
    assert writers.restore(data) is not None
    same_update(data, MAP_SET)


def test_forget_absent_drops_only_deleted_values():
    doc, writers, log = Doc(), WriterBytes(), []
    doc.observe(lambda event: (writers.note(event.update), log.append(event.update)))
    meta = doc.get("meta", type=Map)
    meta["a"] = {"x": 1, "y": 2, "z": 3}
    meta["b"] = {"x": 1, "y": 2, "z": 3}
    del meta["a"]
    snapshot = writers.restore(doc.get_update())
    state = decode_state_vector(doc.get_state())
    meta["c"] = {"x": 1, "y": 2, "z": 3}  # written after the snapshot's state
    assert writers.values == 3
    writers.forget_absent(snapshot, state)
    assert writers.values == 2  # "a" is gone from the snapshot: forgotten
    assert_as_written(writers.restore(doc.get_update()), writers_encodings(log))


# -- random edit histories -------------------------------------------------------------

KEYS = st.sampled_from(["zeta", "alpha", "mu", "beta", "omega", "kappa", "id", "x"])
SCALAR = st.one_of(st.integers(-2**31, 2**31), st.floats(allow_nan=False), st.booleans(),
                   st.none(), st.text(max_size=5))
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, min_size=2, max_size=6)),
    max_leaves=12)
OBJECT = st.dictionaries(KEYS, VALUE, min_size=2, max_size=8)

edits = st.lists(st.tuples(
    st.integers(0, 2),  # which client
    st.sampled_from(["set", "push", "insert", "delete", "text", "format", "embed", "untext"]),
    st.integers(0, 1000),  # a position, taken modulo the length
    OBJECT,
), min_size=1, max_size=25)


def edit_history(steps, syncs) -> tuple[list[Doc], list[bytes]]:
    """Three clients editing maps, arrays and rich text with objects of 2+ keys; after
    each step, a drawn pair of clients may sync (so edits build on others' items)."""
    clients = [Doc() for _ in range(3)]
    updates: list[bytes] = []
    for doc in clients:
        doc.observe(lambda event, sink=updates: sink.append(event.update))
    for (who, op, where, value), sync in zip(steps, syncs, strict=True):
        doc = clients[who]
        meta, items, text = (doc.get("meta", type=Map), doc.get("items", type=Array),
                             doc.get("body", type=Text))
        if op == "set":
            meta[f"k{where % 4}"] = value
        elif op == "push":
            items.extend([value, dict(reversed(value.items()))])
        elif op == "insert":
            items.insert(where % (len(items) + 1), value)
        elif op == "delete" and len(items):
            del items[where % len(items)]
        elif op == "text":
            text.insert(where % (len(text) + 1), "abc")  # (pycrdt mis-indexes non-ASCII text)
        elif op == "format" and len(text):
            start = where % len(text)
            text.format(start, min(len(text), start + 3), {"link": value})
        elif op == "embed":
            text.insert_embed(where % (len(text) + 1), value)
        elif op == "untext" and len(text):
            del text[where % len(text)]
        if sync is not None:
            source, target = clients[sync[0]], clients[sync[1]]
            if source is not target:
                target.apply_update(source.get_update(target.get_state()))
    return clients, updates


def writers_encodings(updates: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Each reorderable value's bytes in the first update that carried it."""
    first: dict[tuple[int, int], bytes] = {}
    for update in updates:
        for value in embedded_values(update):
            if value.reorderable:
                first.setdefault((value.client, value.clock), update[value.start:value.end])
    return first


def assert_as_written(update: bytes, first: dict[tuple[int, int], bytes]) -> None:
    for value in embedded_values(update):
        if value.reorderable:
            assert update[value.start:value.end] == first[value.client, value.clock]


def close(a, b) -> bool:
    """Equal, but floats to 12 digits: in embeds and format attributes pycrdt's own
    copy has the writer's float rounded (its JSON), the restored bytes have it exact."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def document(update: bytes) -> tuple:
    doc = Doc()
    doc.apply_update(update)
    return (doc.get("meta", type=Map).to_py(), doc.get("items", type=Array).to_py(),
            doc.get("body", type=Text).diff(), decode_state_vector(doc.get_state()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits, st.data())
def test_restored_updates_are_pycrdts_documents_in_the_writers_bytes(steps, data):
    syncs = data.draw(st.lists(st.one_of(st.none(), st.tuples(st.integers(0, 2),
                                                                st.integers(0, 2))),
                               min_size=len(steps), max_size=len(steps)))
    clients, updates = edit_history(steps, syncs)
    if not updates:
        return  # deletions of nothing: no history
    first = writers_encodings(updates)
    server, writers = Doc(), WriterBytes()
    for update in updates:  # as the Document actor does: apply, then note
        server.apply_update(update)
        writers.note(update)

    # The whole document (sync step 2 to a new client, the HTTP export).
    full = server.get_update()
    restored = writers.restore(full)
    assert close(document(restored), document(full))
    assert_as_written(restored, first)

    # A diff against a client's state vector (sync step 2 to a returning client).
    for client in clients:
        diff = server.get_update(client.get_state())
        restored_diff = writers.restore(diff)
        assert_as_written(restored_diff, first)
        caught_up = Doc()
        caught_up.apply_update(client.get_update())
        caught_up.apply_update(restored_diff)
        assert close(document(caught_up.get_update()), document(full))

    # One drain's updates merged into one broadcast.
    start = data.draw(st.integers(0, len(updates) - 1))
    batch = updates[start:start + data.draw(st.integers(1, 8))]
    merged = merge_as_written(batch, writers)
    if len(batch) == 1:
        assert merged is batch[0]  # forwarded as its sender encoded it
    else:
        assert close(document(merged), document(merge_many(batch)))
        assert_as_written(merged, first)

    # Compaction: the snapshot that replaces the log, garbage-collected, as written.
    snapshot = compacted_snapshot(full, server.get_state(), None, updates, writers)
    assert close(document(snapshot), document(full))
    assert_as_written(snapshot, first)
    # Having forgotten what the snapshot no longer holds, it still restores the rest.
    assert_as_written(writers.restore(server.get_update()), first)


def test_compaction_garbage_collects_documents_holding_objects():
    """A compacted snapshot of a doc with a 12-key object and deleted text is the doc's
    own compact encoding (before, the read-back compare failed on the key order and
    the whole log was kept, deleted text included)."""
    doc, writers, log = Doc(), WriterBytes(), []
    doc.observe(lambda event: log.append(event.update))
    doc.get("meta", type=Map)["k"] = {f"key{i}": i for i in range(12)}
    text = doc.get("body", type=Text)
    text += "x" * 1000
    del text[0:1000]
    for update in log:
        writers.note(update)
    snapshot = compacted_snapshot(doc.get_update(), doc.get_state(), None, log, writers)
    assert len(snapshot) < 200 < len(merge_many(log))
    assert same_update(snapshot, doc.get_update())
    assert_as_written(snapshot, writers_encodings(log))


def test_a_diff_against_a_state_vector_splits_values_by_clock():
    """A diff starting inside a multi-value item still gets each value's bytes."""
    doc, writers = Doc(), WriterBytes()
    doc.apply_update(ARRAY_PUSH)
    writers.note(ARRAY_PUSH)
    diff = writers.restore(doc.get_update(b"\x01\x07\x01"))  # has clock 0 of client 7
    values = embedded_values(diff)
    assert [(v.client, v.clock) for v in values] == [(7, 1)]
    assert diff[values[0].start:values[0].end] == ARRAY_PUSH[97:121]


def test_string_clocks_count_utf16_units():
    """A string item takes one clock per UTF-16 unit (an emoji takes two), so the
    object written after it has clock 4 here, as Yjs numbers it."""
    doc, log = Doc(), []
    doc.observe(lambda event: log.append(event.update))
    with doc.transaction():
        doc.get("body", type=Text).insert(0, "a\U0001f600\u00e9")
        doc.get("meta", type=Map)["k"] = {"x": 1, "y": 2}
    (value,) = embedded_values(log[0])
    assert (value.client, value.clock) == (doc.client_id, 4)
