"""The y-websocket codec: golden bytes, round trips, and every kind of bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab.errors import InvalidPayload, RemoteProtocolError, UnsupportedMessage
from collab.protocol import ywire
from collab.protocol.ywire import (
    AwarenessEntry,
    AwarenessMessage,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
)

# Bytes as y-protocols (lib0) encodes them.
GOLDEN = [
    (SyncStep1(b"\x00"), b"\x00\x00\x01\x00"),
    (SyncStep2(b"\x00\x00"), b"\x00\x01\x02\x00\x00"),
    (SyncUpdate(b"\x01\x02\x03"), b"\x00\x02\x03\x01\x02\x03"),
    (AwarenessMessage(b"\x00"), b"\x01\x01\x00"),
    (QueryAwareness(), b"\x03"),
    (SyncUpdate(b"x" * 200), b"\x00\x02\xc8\x01" + b"x" * 200),
]


@pytest.mark.parametrize(("message", "frame"), GOLDEN)
def test_golden_bytes(message, frame):
    assert ywire.serialize(message) == frame
    assert ywire.parse(frame) == message


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
     (2**32, b"\x80\x80\x80\x80\x10")],
)
def test_var_uint_golden(value, encoded):
    assert ywire.write_var_uint(value) == encoded
    assert ywire.read_var_uint(encoded, 0) == (value, len(encoded))


@given(st.integers(min_value=0, max_value=2**53 - 1))
def test_var_uint_round_trip(value):
    encoded = ywire.write_var_uint(value)
    assert ywire.read_var_uint(encoded, 0) == (value, len(encoded))


@given(st.binary(max_size=300))
def test_update_round_trip(update):
    frame = ywire.encode_update(update)
    assert ywire.parse(frame) == SyncUpdate(update)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", RemoteProtocolError),  # empty frame
        (b"\x80", RemoteProtocolError),  # truncated varint
        (b"\xff" * 10, RemoteProtocolError),  # varint wider than 53 bits
        (b"\x00", RemoteProtocolError),  # sync without subtype
        (b"\x00\x02", RemoteProtocolError),  # update without payload
        (b"\x00\x02\x05ab", RemoteProtocolError),  # payload shorter than its length
        (b"\x00\x02\x01ab", RemoteProtocolError),  # trailing bytes
        (b"\x00\x07\x00", UnsupportedMessage),  # unknown sync type
        (b"\x02\x00", UnsupportedMessage),  # auth is server-to-client only
        (b"\x09", UnsupportedMessage),  # unknown message type
        (b"\x03\x00", RemoteProtocolError),  # query-awareness has no payload
    ],
)
def test_bad_frames(frame, error):
    with pytest.raises(error):
        ywire.parse(frame)


def test_close_codes_follow_the_fault():
    assert RemoteProtocolError("x").close_code == 1002
    assert UnsupportedMessage("x").close_code == 1003
    assert InvalidPayload("x").close_code == 1007


@given(st.binary(max_size=64))
def test_parse_arbitrary_bytes_never_crashes(data):
    try:
        ywire.parse(data)
    except RemoteProtocolError:
        pass


@given(st.sampled_from([frame for _, frame in GOLDEN]), st.data())
def test_mutated_valid_frames_parse_or_fail_cleanly(frame, data):
    buf = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and buf:
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] = data.draw(st.integers(0, 255))
        elif op == "cut" and buf:
            del buf[data.draw(st.integers(0, len(buf) - 1)):]
        else:
            buf.insert(data.draw(st.integers(0, len(buf))), data.draw(st.integers(0, 255)))
    try:
        message = ywire.parse(bytes(buf))
    except RemoteProtocolError:
        return
    assert ywire.parse(ywire.serialize(message)) == message


# -- awareness -----------------------------------------------------------------

AWARENESS_GOLDEN = (
    # one client (id 5, clock 2) with state {"user":"a"}
    b"\x01\x05\x02\x0c" + b'{"user":"a"}'
)


def test_awareness_golden():
    entries = ywire.decode_awareness(AWARENESS_GOLDEN)
    assert entries == [AwarenessEntry(5, 2, '{"user":"a"}')]
    assert ywire.encode_awareness(entries) == AWARENESS_GOLDEN


@given(st.lists(st.tuples(st.integers(0, 2**32), st.integers(0, 2**20),
                          st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
                max_size=5))
def test_awareness_round_trip(raw):
    import json

    entries = [AwarenessEntry(c, k, json.dumps(s)) for c, k, s in raw]
    assert ywire.decode_awareness(ywire.encode_awareness(entries)) == entries


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\x01\x05\x02\x03abc", InvalidPayload),  # state is not JSON
        (b"\x01\x05\x02\x02\xff\xfe", InvalidPayload),  # state is not UTF-8
        (b"\x02\x05\x02\x04null", RemoteProtocolError),  # count says 2, one present
        (b"\x00\x00", RemoteProtocolError),  # trailing bytes
    ],
)
def test_bad_awareness(payload, error):
    with pytest.raises(error):
        ywire.decode_awareness(payload)


@given(st.binary(max_size=64))
def test_awareness_arbitrary_bytes_never_crash(data):
    try:
        ywire.decode_awareness(data)
    except RemoteProtocolError:
        pass


def test_state_vector_decode():
    assert ywire.decode_state_vector(b"\x02\x05\x0a\x80\x01\x03") == {5: 10, 128: 3}
    with pytest.raises(RemoteProtocolError):
        ywire.decode_state_vector(b"\x02\x05")
