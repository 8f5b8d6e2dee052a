"""Decoding an HTTP request body (JSON, or msgpack when the caller says so) into a
value, with one clear 400 for every way a body can be bad: not UTF-8, not JSON or
msgpack, nested deeper than the decoder's recursion allows."""

from __future__ import annotations

import json
from typing import Any

import msgpack

from collab.errors import BadRequest


def decode_body(body: bytes, binary: bool = False) -> Any:
    """`body` as msgpack (`binary`) or JSON; raises BadRequest (400 invalid_body)."""
    try:
        return msgpack.unpackb(body, raw=False) if binary else json.loads(body)
    except (ValueError, RecursionError, msgpack.UnpackException) as exc:
        kind = "msgpack" if binary else "JSON"
        raise BadRequest(f"body is not valid {kind}: {exc}", code="invalid_body") from None
