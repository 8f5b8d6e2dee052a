"""Stored MessagePack shown as JSON (protocol/msgpack_json.py): every value survives
json.dumps in strict mode, and what JSON cannot hold says what it was."""

from __future__ import annotations

import json

import msgpack
import pytest

from collab.protocol.codec import pack
from collab.protocol.msgpack_json import as_json, decode_as_json, is_undecodable


@pytest.mark.parametrize(("value", "shown"), [
    (None, None), (True, True), (7, 7), (-2**63, -2**63), (1.5, 1.5), ("é", "é"),
    (b"\x00\x01\xff", {"$bytes": "AAH/"}),
    (float("nan"), {"$float": "nan"}), (float("-inf"), {"$float": "-inf"}),
    ([1, [b"a"]], [1, [{"$bytes": "YQ=="}]]),
    ({"n": 1, 7: "seven", None: 0, b"k": 1},
     {"n": 1, "7": "seven", "null": 0, '{"$bytes": "aw=="}': 1}),
])
def test_stored_values_as_json(value, shown):
    assert decode_as_json(pack(value)) == shown
    json.dumps(shown, allow_nan=False)  # strict JSON: no NaN, only string keys


def test_extension_types_and_timestamps_say_what_they_were():
    ext = msgpack.packb(msgpack.ExtType(5, b"\x01\x02"))
    assert decode_as_json(ext) == {"$ext": 5, "data": "AQI="}
    stamp = msgpack.packb(msgpack.Timestamp(1_700_000_000, 500_000_000))
    assert decode_as_json(stamp) == {"$timestamp": "2023-11-14T22:13:20.500000Z"}


@pytest.mark.parametrize("damaged", [b"\xc1", b"\x92\x01", b"\x01\x02", b""])
def test_bytes_that_are_not_msgpack_are_shown_not_raised(damaged):
    shown = decode_as_json(damaged)
    assert is_undecodable(shown) and shown["error"]
    assert shown["$undecodable"] == __import__("base64").b64encode(damaged).decode()
    assert not is_undecodable(decode_as_json(pack({"ok": 1})))


def test_tuples_made_in_process_are_lists():
    assert as_json((1, (2, b"x"))) == [1, [2, {"$bytes": "eA=="}]]
