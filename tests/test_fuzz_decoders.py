"""Property tests for the pure decoders: the y-websocket and Hocuspocus codecs, the awareness and
state-vector payloads, the native envelope's JSON side and the pycrdt helpers, on
arbitrary bytes and on mutations of valid messages. Each decoder either returns a
well-formed value or raises its documented error; nothing else, and nothing changes
when it refuses. (tests/test_native_fuzz.py covers native msgpack; this adds JSON.)"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from collab.actors import ydoc
from collab.actors.awareness import AwarenessTable
from collab.errors import RemoteProtocolError
from collab.protocol import hocuspocus, native, ywire
from collab.protocol.ywire import AwarenessEntry

#: Examples per property: enough to hit every branch of these small decoders,
#: few enough that the module runs in a few seconds. Derandomized for CI.
EXAMPLES = 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

ywire_messages = st.one_of(
    st.builds(ywire.SyncStep1, st.binary(max_size=40)),
    st.builds(ywire.SyncStep2, st.binary(max_size=40)),
    st.builds(ywire.SyncUpdate, st.binary(max_size=40)),
    st.builds(ywire.AwarenessMessage, st.binary(max_size=40)),
    st.just(ywire.QueryAwareness()),
)

#: Client ids and clocks as JS clients send them: up to 2**53 - 1.
var_uints = st.integers(0, 2**ywire.MAX_VAR_UINT_BITS - 1)
json_states = st.one_of(
    st.just("null"),
    st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=6).map(lambda value: json.dumps(value, ensure_ascii=False)),
)
awareness_entries = st.lists(st.builds(AwarenessEntry, var_uints, var_uints, json_states),
                             max_size=4)


def mutate(draw, valid: bytes) -> bytes:
    """Flip, cut, insert or overwrite a varUint in `valid`, one to four times;
    `draw` is hypothesis's draw (`data.draw`, or a composite's).

    "lengthen"/"shorten" rewrite the byte at a position as a larger or smaller
    number: on a length prefix that is a length change, elsewhere a bit flip.
    """
    buf = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "cut", "insert", "lengthen", "shorten",
                                        "varuint")))
        i = draw(st.integers(0, len(buf)))
        if op == "cut":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "varuint":
            buf[i:i + 1] = ywire.write_var_uint(draw(st.integers(0, 2**60)))
        elif i < len(buf):
            if op == "flip":
                buf[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "lengthen":
                buf[i] = min(255, buf[i] + draw(st.integers(1, 200)))
            else:
                buf[i] = max(0, buf[i] - draw(st.integers(1, 200)))
    return bytes(buf)


@st.composite
def mutated(draw, make_valid) -> bytes:
    """A mutation of the valid bytes `make_valid()` returns."""
    return mutate(draw, make_valid())


def check_parsed(message: ywire.Message, frame: bytes) -> None:
    """A parsed message is one of the message classes, re-encodes to a frame that
    parses to the same message, and is no longer than `frame` (a parse consumes
    every byte). Not byte-equal: lib0 accepts overlong varUints (0x80 0x00 is 0),
    which `serialize` writes in their shortest form."""
    assert isinstance(message, ywire.Message)
    again = ywire.serialize(message)
    assert ywire.parse(again) == message
    assert len(again) <= len(frame)


# -- ywire.parse ----------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=64))
@example(b"\x83\x00")  # QUERY_AWARENESS with an overlong type varUint
def test_parse_arbitrary_bytes(frame):
    try:
        message = ywire.parse(frame)
    except RemoteProtocolError:
        return
    check_parsed(message, frame)


@FUZZ
@given(ywire_messages)
def test_parse_serialize_round_trip(message):
    frame = ywire.serialize(message)
    assert ywire.parse(frame) == message
    assert ywire.serialize(ywire.parse(frame)) == frame


@FUZZ
@given(ywire_messages, st.data())
def test_parse_mutated_frames(message, data):
    frame = mutate(data.draw, ywire.serialize(message))
    try:
        parsed = ywire.parse(frame)
    except RemoteProtocolError:
        return
    check_parsed(parsed, frame)


def test_var_uint_bounds():
    """The widest value JS can hold round-trips; an endless varUint is refused at
    53 bits rather than read to the end of the frame."""
    top = 2**ywire.MAX_VAR_UINT_BITS - 1
    assert ywire.read_var_uint(ywire.write_var_uint(top), 0)[0] == top
    with pytest.raises(RemoteProtocolError):
        ywire.parse(b"\x80" * 1000)


@pytest.mark.parametrize("value", [2**53, 2**56 - 1])
def test_var_uint_wider_than_53_bits_is_refused(value):
    with pytest.raises(RemoteProtocolError):
        ywire.read_var_uint(ywire.write_var_uint(value), 0)


@FUZZ
@given(var_uints)
def test_var_uint_round_trip(value):
    raw = ywire.write_var_uint(value)
    assert ywire.read_var_uint(raw + b"\xff", 0) == (value, len(raw))


# -- awareness payloads and the awareness table -----------------------------------


@FUZZ
@given(awareness_entries)
def test_awareness_round_trip(entries):
    payload = ywire.encode_awareness(entries)
    assert ywire.decode_awareness(payload) == entries
    frame = ywire.serialize(ywire.AwarenessMessage(payload))
    assert ywire.parse(frame) == ywire.AwarenessMessage(payload)


def check_awareness(payload: bytes) -> list[AwarenessEntry] | None:
    """Decode `payload`: None if refused (with the documented error only), else the
    entries, each with JSON state, that re-encode to the same entries."""
    try:
        entries = ywire.decode_awareness(payload)
    except RemoteProtocolError:
        return None
    for entry in entries:  # ids may reach 2**56 - 1: test_var_uint_wider_than_53_bits...
        json.loads(entry.state)
    again = ywire.encode_awareness(entries)  # shortest varUints: see check_parsed
    assert ywire.decode_awareness(again) == entries and len(again) <= len(payload)
    return entries


@FUZZ
@given(st.binary(max_size=64))
@example(b"\x01\x80\x80\x80\x00\x00\x04null")  # client id 0, written overlong
def test_awareness_arbitrary_bytes(payload):
    check_awareness(payload)


def table_view(table: AwarenessTable) -> tuple:
    return (dict(table._entries), dict(table._owners), table.encode_all(), len(table))


@FUZZ
@given(awareness_entries, awareness_entries, st.data())
def test_awareness_table_untouched_by_rejected_update(present, sent, data):
    """What the Document actor does with an awareness frame: decode, then apply. A
    frame the decoder refuses leaves the table exactly as it was; one it accepts
    changes only the client ids it names, and none that another connection holds."""
    table = AwarenessTable()
    table.apply(present, owner="a")
    before = table_view(table)
    payload = mutate(data.draw, ywire.encode_awareness(sent))
    entries = check_awareness(payload)
    if entries is None:
        assert table_view(table) == before
        return
    accepted = table.apply(entries, owner="b").accepted
    named = {entry.client_id for entry in entries}
    assert {entry.client_id for entry in accepted} <= named
    for client_id, entry in before[0].items():
        if client_id not in named or client_id in before[1]:  # or "a" holds it: not b's
            assert table._entries[client_id] == entry
    assert table.remove_owner("b") is not None
    assert all(owner == "a" for owner in table._owners.values())


def test_awareness_state_nested_too_deep():
    payload = ywire.encode_awareness([AwarenessEntry(1, 1, "[" * 100_000)])
    with pytest.raises(RemoteProtocolError):
        ywire.decode_awareness(payload)


# -- state vectors ------------------------------------------------------------------


@FUZZ
@given(st.dictionaries(var_uints, var_uints, max_size=5))
def test_state_vector_round_trip(vector):
    raw = ywire.write_var_uint(len(vector)) + b"".join(
        ywire.write_var_uint(client) + ywire.write_var_uint(clock)
        for client, clock in vector.items())
    assert ywire.decode_state_vector(raw) == vector


@FUZZ
@given(st.one_of(st.binary(max_size=48), mutated(lambda: real_state())))
def test_state_vector_arbitrary_and_mutated(raw):
    try:
        vector = ywire.decode_state_vector(raw)
    except RemoteProtocolError:
        return
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in vector.items())


# -- native JSON envelope -------------------------------------------------------------

JSON_VALID = [
    '{"id":1,"op":"ping"}',
    '{"id":"a","op":"doc.subscribe","doc":"d","sv":"AA=="}',
    '{"id":3,"op":"doc.update","doc":"d","update":"AAA="}',
    '{"op":"actor.call","actor":"room","key":"r","action":"send","args":["c","hi"]}',
]


def check_native(frame: bytes | str) -> None:
    try:
        message = native.decode(frame)
    except native.MalformedMessage as exc:
        request_id = getattr(exc, "request_id", None)
        assert request_id is None or isinstance(request_id, int | str)
        return
    assert isinstance(message, dict) and isinstance(message["op"], str)
    if isinstance(frame, str):  # base64 fields arrive as bytes, whatever the frame said
        for name in native.BINARY_FIELDS:
            assert not isinstance(message.get(name), str)


@FUZZ
@given(st.sampled_from(JSON_VALID), st.data())
def test_native_mutated_json(text, data):
    raw = mutate(data.draw, text.encode())
    check_native(raw.decode("utf-8", errors="replace"))
    check_native(raw)  # the same bytes arriving in a binary frame


@FUZZ
@given(st.dictionaries(st.sampled_from(["id", "op", "sv", "update", "doc"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=70), st.lists(st.integers(), max_size=2)),
                       max_size=5))
def test_native_json_field_types(fields):
    """Every combination of field types in a JSON map: decoded or MalformedMessage."""
    check_native(json.dumps(fields))


@pytest.mark.parametrize("frame", ["[" * 100_000, '{"op":' * 50_000, "\ud800", "1e999999",
                                   b"\x91" * 100_000, b"\xc1", b"\xd4\x05\x00"])
def test_native_pathological_frames(frame):
    """Deep nesting, lone surrogates, huge exponents, reserved bytes, ext types."""
    check_native(frame)


# -- pycrdt helpers (ydoc) --------------------------------------------------------------


def real_update(text: str = "hello world", client_id: int = 4242) -> bytes:
    """A real Yjs v1 update (insert, insert, delete), the same bytes on every call:
    hypothesis replays examples, so the valid input must not depend on a random id."""
    doc = Doc(client_id=client_id)
    body = doc.get("body", type=Text)
    body += text
    body.insert(3, "XYZ")
    del body[0:2]
    return doc.get_update()


def real_state() -> bytes:
    doc = Doc(client_id=1)
    doc.apply_update(real_update())
    return doc.get_state()


@FUZZ
@given(st.data())
def test_merge_many_mutated_updates(data):
    """merge_many on a corrupt update refuses it (ValueError, or a pycrdt panic: see
    is_refusal) and never fails otherwise; a successful merge applies to a fresh doc."""
    updates = [real_update("abc", 7), mutate(data.draw, real_update()), real_update("xyz", 8)]
    try:
        merged = ydoc.merge_many(updates)
    except BaseException as exc:  # only merged after each applied, so a panic is moot
        assert is_refusal(exc), exc
        return
    Doc().apply_update(merged)


@FUZZ
@given(st.one_of(st.binary(max_size=64), mutated(lambda: real_update())))
def test_apply_update_is_all_or_nothing(update):
    """pycrdt itself: a refused update leaves the doc byte-identical (the Document
    actor's promise rests on this)."""
    doc = Doc()
    doc.apply_update(real_update("base"))
    state, full = doc.get_state(), doc.get_update()
    try:
        doc.apply_update(update)
    except BaseException as exc:
        assert is_refusal(exc), exc
        assert (doc.get_state(), doc.get_update()) == (state, full)


#: A corrupt update that makes yrs 0.28 (pycrdt 0.14.13) panic instead of raising
#: ValueError, once the doc holds `real_update("base")`: `Option::unwrap()` on
#: None in yrs/src/update.rs:85. The panic surfaces as pyo3's PanicException,
#: a BaseException, which `except ValueError` / `except Exception` miss.
PANIC_UPDATE = (b"\x01\x00\x92!\x00\x01\x01\x04body\x02\x84\x92!\x01\x01l\x84\x92!\x02"
                b"\x08lo world\xc4\x92!\x02\x92!\x03\x03XYZ\x01\x92!\x01\x00\x02")


def is_refusal(exc: BaseException) -> bool:
    """pycrdt refuses an update with ValueError, or, for some corrupt updates, a
    Rust panic (pyo3_runtime.PanicException, only importable once one happened)."""
    return isinstance(exc, ValueError) or type(exc).__name__ == "PanicException"


def test_pycrdt_panics_on_a_corrupt_update():
    """Pins the upstream behaviour the Document actor must guard against (see
    tests/test_fuzz_actors.py); when pycrdt raises ValueError here instead, this
    fails and the guard can go."""
    doc = Doc()
    doc.apply_update(real_update("base"))
    state, full = doc.get_state(), doc.get_update()
    with pytest.raises(BaseException) as caught:
        doc.apply_update(PANIC_UPDATE)
    assert type(caught.value).__name__ == "PanicException"
    assert not isinstance(caught.value, Exception)
    assert (doc.get_state(), doc.get_update()) == (state, full)  # nothing applied
    doc.get("body", type=Text).insert(0, "still usable ")


@FUZZ
@given(st.one_of(st.binary(max_size=32), mutated(lambda: real_state())))
def test_diff_against_mutated_state_vector(state_vector):
    """What the actor's `_diff` does for a SyncStep1: ValueError or an update."""
    doc = Doc()
    doc.apply_update(real_update())
    try:
        diff = doc.get_update(state_vector)
    except ValueError:
        return
    Doc().apply_update(diff)


@FUZZ
@given(st.data())
def test_compaction_keeps_accepted_corrupt_rows(data):
    """Compaction over a snapshot and log rows, one of them a mutated update the doc
    accepted (rows are stored only after they applied): it succeeds, and a doc
    rebuilt from the new snapshot equals the live one."""
    snapshot = real_update()
    rows = [real_update("row", 9), mutate(data.draw, real_update("row2", 10))]
    doc = Doc()
    doc.apply_update(snapshot)
    for row in rows:
        try:
            doc.apply_update(row)
        except BaseException as exc:
            assert is_refusal(exc), exc
            return  # refused: never stored, never compacted
    compacted = ydoc.compacted_snapshot(doc.get_update(), doc.get_state(), snapshot, rows)
    rebuilt = Doc()
    rebuilt.apply_update(compacted)
    assert ywire.decode_state_vector(rebuilt.get_state()) == \
        ywire.decode_state_vector(doc.get_state())
    assert str(rebuilt.get("body", type=Text)) == str(doc.get("body", type=Text))


#: real_update("row2", 10) with bit 0 of byte 24 flipped: its second item's origin
#: now points at its own client's clock 3, which yrs accepts.
ODD_ROW = (b"\x01\x04\n\x00\x01\x01\x04body\x02\x84\n\x01\x01w\x84\n\x02\x012\xc4\n\x03\n"
           b"\x03\x03XYZ\x01\n\x01\x00\x02")


def test_compaction_of_a_self_referencing_row_keeps_the_text():
    snapshot, rows = real_update(), [real_update("row", 9), ODD_ROW]
    live = Doc()
    for update in (snapshot, *rows):
        live.apply_update(update)
    compacted = ydoc.compacted_snapshot(live.get_update(), live.get_state(), snapshot, rows)
    rebuilt = Doc()
    rebuilt.apply_update(compacted)
    assert str(rebuilt.get("body", type=Text)) == str(live.get("body", type=Text))


# -- hocuspocus.parse ----------------------------------------------------------------

#: Routing keys as providers send them: a name, maybe a session id behind a NUL.
hocuspocus_keys = st.one_of(
    st.text(max_size=12),
    st.builds(lambda name, session: f"{name}{hocuspocus.SESSION_SEPARATOR}{session}",
              st.text(min_size=1, max_size=8), st.text(max_size=8)))
short_text = st.text(max_size=12)
hocuspocus_bodies = st.one_of(
    ywire_messages,
    st.builds(hocuspocus.Auth, short_text, st.none() | short_text),
    st.builds(hocuspocus.Authenticated, st.sampled_from(hocuspocus.SCOPES)),
    st.builds(hocuspocus.PermissionDenied, short_text),
    st.builds(hocuspocus.Stateless, short_text),
    st.builds(hocuspocus.Close, short_text),
    st.builds(hocuspocus.SyncStatus, st.booleans()),
)
hocuspocus_frames = st.one_of(
    st.builds(hocuspocus.Frame, hocuspocus_keys, hocuspocus_bodies),
    st.just(hocuspocus.Ping()), st.just(hocuspocus.Pong()))


def check_hocuspocus(parsed: hocuspocus.Frame | hocuspocus.Ping | hocuspocus.Pong) -> None:
    """A parsed frame re-encodes to bytes that parse to the same frame (not always
    byte-equal: overlong varUints, a client's Close without a reason)."""
    assert isinstance(parsed, hocuspocus.Frame | hocuspocus.Ping | hocuspocus.Pong)
    assert hocuspocus.parse(hocuspocus.serialize(parsed)) == parsed


@FUZZ
@given(st.binary(max_size=64))
@example(b"\x09")
@example(b"\x0a")
@example(b"\x01a\x07")
def test_hocuspocus_arbitrary_bytes(frame):
    try:
        parsed = hocuspocus.parse(frame)
    except RemoteProtocolError:
        return
    check_hocuspocus(parsed)


@FUZZ
@given(hocuspocus_frames)
def test_hocuspocus_round_trip(frame):
    data = hocuspocus.serialize(frame)
    assert hocuspocus.parse(data) == frame
    assert hocuspocus.serialize(hocuspocus.parse(data)) == data


@FUZZ
@given(hocuspocus_frames, st.data())
def test_hocuspocus_mutated_frames(frame, data):
    mutated_frame = mutate(data.draw, hocuspocus.serialize(frame))
    try:
        parsed = hocuspocus.parse(mutated_frame)
    except RemoteProtocolError:
        return
    check_hocuspocus(parsed)
