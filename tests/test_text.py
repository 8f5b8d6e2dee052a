"""Text every store can hold: the checks the edges run on decoded payloads."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab.errors import BadRequest
from collab.gateway.http_body import decode_body
from collab.protocol import native
from collab.protocol.text import (
    InvalidText,
    check_column,
    check_strings,
    is_text,
    json_may_hold_surrogates,
    storable,
)

#: Any code point, lone surrogates included (Python strings may hold them).
ANY_CHAR = st.characters(codec=None, categories=None)
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20)


def utf8_can_carry(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


@given(JSON_VALUES)
def test_check_strings_refuses_exactly_what_utf8_cannot_carry(value):
    if utf8_can_carry(value):
        check_strings(value)
    else:
        with pytest.raises(InvalidText):
            check_strings(value)


@given(JSON_VALUES)
def test_json_without_a_surrogate_escape_needs_no_walk(value):
    raw = json.dumps(value)  # ASCII: every non-ASCII character escaped
    if not utf8_can_carry(value):
        assert json_may_hold_surrogates(raw)
        assert json_may_hold_surrogates(raw.encode())


def test_a_valid_surrogate_pair_is_text():
    value = json.loads('"\\ud83d\\ude00"')  # one emoji, escaped as a pair
    assert value == "\U0001F600" and is_text(value)
    check_strings({"k": value})


@given(ANY_TEXT)
def test_storable_text_fits_every_column(text):
    kept = storable(text, 10)
    assert len(kept) <= 10 and "\x00" not in kept
    kept.encode()  # valid UTF-8


def test_check_column_bounds_and_characters():
    check_column("ann", "user", 3)
    for bad in ("", "anne", "a\x00", "\ud800"):
        with pytest.raises(InvalidText):
            check_column(bad, "user", 3)


def test_deep_nesting_does_not_exhaust_the_stack():
    value: list = []
    for _ in range(100_000):
        value = [value]
    check_strings(value)


def test_a_native_json_frame_with_a_lone_surrogate_is_refused_with_its_id():
    frame = '{"id": 7, "op": "actor.call", "args": ["\\ud800-1"]}'
    with pytest.raises(native.MalformedMessage) as refused:
        native.decode(frame)
    assert refused.value.code == "invalid_text" and refused.value.request_id == 7
    # msgpack cannot carry one at all: its strings are strict UTF-8.
    with pytest.raises(native.MalformedMessage):
        native.decode(b"\x82\xa2op\xa1x\xa1a\xa3\xed\xa0\x80")
    assert native.decode('{"op": "x", "a": "\\ud83d\\ude00"}')["a"] == "\U0001F600"


@pytest.mark.parametrize("body", [b'{"user": "\\ud800"}', b'{"user": "\xed\xa0\x80"}',
                                  b'{"\\udfff": 1}'])
def test_an_http_body_with_a_lone_surrogate_is_a_400(body):
    with pytest.raises(BadRequest) as refused:
        decode_body(body)
    assert refused.value.status == 400 and refused.value.code in ("invalid_text", "invalid_body")
    assert decode_body(msgpack.packb({"user": "ok"}), binary=True) == {"user": "ok"}
