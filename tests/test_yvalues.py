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

from collab.actors.ydoc import (
    compacted_snapshot,
    doc_from_storage,
    merge_as_written,
    merge_many,
    writers_from_storage,
)
from collab.protocol.yupdate import ContentRef, UpdateFormatError, embedded_values
from collab.protocol.yvalues import WriterBytes, same_update, same_value
from collab.protocol.ywire import decode_state_vector
from collab.storage.base import StoredDocument
from tests.test_yupdate import ARRAY_PUSH, MAP_SET, SCALARS, TEXT_EMBED, TEXT_FORMAT, XML

ANY, EMBED, FORMAT = ContentRef.ANY, ContentRef.EMBED, ContentRef.FORMAT


@pytest.mark.parametrize("update", [MAP_SET, ARRAY_PUSH, TEXT_FORMAT, TEXT_EMBED])
def test_pycrdt_reorders_and_restore_gives_the_writers_bytes(update):
    doc = Doc()
    doc.apply_update(update)
    writers = WriterBytes()
    writers.note(update)
    reencoded = doc.get_update()
    if update is MAP_SET:  # 12 keys: yrs lists them in hash order (1 in 12! keeps them)
        assert reencoded != update
    assert same_update(reencoded, update)  # the same values
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
    writers.concatenate([data, MAP_SET])
    same_update(data, MAP_SET)


def test_a_snapshot_forgets_only_deleted_values():
    doc, writers, log = Doc(), WriterBytes(), []
    doc.observe(lambda event: (writers.note(event.update), log.append(event.update)))
    meta = doc.get("meta", type=Map)
    meta["a"] = {"x": 1, "y": 2, "z": 3}
    meta["b"] = {"x": 1, "y": 2, "z": 3}
    del meta["a"]
    snapshot, state = doc.get_update(), decode_state_vector(doc.get_state())
    meta["c"] = {"x": 1, "y": 2, "z": 3}  # written after the snapshot's state
    assert writers.values == 3
    writers.forget_absent(writers.layout(snapshot), state)
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
    for update in batch:
        writers.note(update)  # as the drain that applied them did
    merged = merge_as_written(batch, writers)
    if len(batch) == 1:
        assert merged is batch[0]  # forwarded as its sender encoded it
    else:
        assert close(document(merged), document(merge_many(batch)))
        # Each value as the first update carrying it wrote it, or as this batch carries
        # it (concatenated as sent): never in pycrdt's own order.
        sent = writers_encodings(batch)
        for value in embedded_values(merged):
            if value.reorderable:
                assert merged[value.start:value.end] in (first[value.client, value.clock],
                                                        sent[value.client, value.clock])

    # Compaction: the snapshot that replaces the log, garbage-collected, as written.
    snapshot = compacted_snapshot(full, server.get_state(), None, updates, writers)
    assert close(document(snapshot), document(full))
    assert_as_written(snapshot, first)
    # Having forgotten what the snapshot no longer holds, it still restores the rest.
    assert_as_written(writers.restore(server.get_update()), first)
    # After a reload from that snapshot (and the log's last rows), too.
    stored = StoredDocument(snapshot, len(updates) - 2, list(enumerate(updates[-2:], 1)))
    reloaded = doc_from_storage(stored)
    assert_as_written(writers_from_storage(stored).restore(reloaded.get_update()), first)


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


@pytest.mark.parametrize("wrong", [1, -1, 30])
def test_a_walk_out_of_step_checks_everything_again(wrong):
    """Values verified once are stepped over by their length; if a length were ever
    wrong, the walk falls out of step, and restore walks again checking every value."""
    doc, writers = Doc(), WriterBytes()
    doc.apply_update(ARRAY_PUSH)
    writers.note(ARRAY_PUSH)
    assert writers.restore(doc.get_update()) == ARRAY_PUSH  # verifies both values
    writers._checked[7][0] += wrong  # a corrupted length, on purpose
    assert writers.restore(doc.get_update()) == ARRAY_PUSH
    assert writers._checked[7][0] == 88  # checked again


def test_a_stored_snapshot_needs_no_check_after_a_reload():
    doc, writers = Doc(), WriterBytes()
    doc.apply_update(MAP_SET)
    writers.note(MAP_SET)
    snapshot = compacted_snapshot(doc.get_update(), doc.get_state(), None, [MAP_SET], writers)
    reloaded = WriterBytes()
    reloaded.remember(snapshot, verified=True)
    assert reloaded._checked == {7: {0: 88}}
    again = Doc()
    again.apply_update(snapshot)
    assert reloaded.restore(again.get_update()) == MAP_SET


def test_compaction_with_writers_keeps_a_self_referencing_rows_text():
    """The read-back that guards against rows which integrate differently once
    re-encoded holds on the structural comparison too."""
    from tests.test_fuzz_decoders import ODD_ROW, real_update
    snapshot, rows = real_update(), [real_update("row", 9), ODD_ROW]
    live, writers = Doc(), WriterBytes()
    for update in (snapshot, *rows):
        live.apply_update(update)
        writers.note(update)
    compacted = compacted_snapshot(live.get_update(), live.get_state(), snapshot, rows, writers)
    rebuilt = Doc()
    rebuilt.apply_update(compacted)
    assert str(rebuilt.get("body", type=Text)) == str(live.get("body", type=Text))
