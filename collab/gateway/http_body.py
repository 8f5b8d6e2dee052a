"""Decoding an HTTP request body (JSON, or msgpack when the caller says so) into a
value, with one clear 400 for every way a body can be bad: not UTF-8, not JSON or
msgpack, nested deeper than the decoder's recursion allows, holding a string that
is not valid Unicode (a lone surrogate: no store can hold it)."""

from __future__ import annotations

import json
from typing import Any

import msgpack

from collab.errors import BadRequest
from collab.protocol.text import InvalidText, check_strings, json_may_hold_surrogates


def decode_body(body: bytes, binary: bool = False) -> Any:
    """`body` as msgpack (`binary`) or JSON; raises BadRequest (400 invalid_body)."""
    try:
        value = msgpack.unpackb(body, raw=False) if binary else json.loads(body)
    except (ValueError, RecursionError, msgpack.UnpackException) as exc:
        kind = "msgpack" if binary else "JSON"
        raise BadRequest(f"body is not valid {kind}: {exc}", code="invalid_body") from None
    if not binary and json_may_hold_surrogates(body):  # msgpack's strings are UTF-8 already
        try:
            check_strings(value, "the body")
        except InvalidText as exc:
            raise BadRequest(exc.message, code=exc.code) from None
    return value
