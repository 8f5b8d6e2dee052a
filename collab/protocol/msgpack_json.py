"""Stored MessagePack shown as JSON: what an administrator reads of an actor's state,
timer arguments, queue messages and workflow steps.

JSON holds less than MessagePack, so each value it cannot hold becomes a small
object whose one `$` key says what it was; bytes that are not MessagePack at all
are shown as such, never raised, since a damaged row is what one inspects them for.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import msgpack

from collab.protocol.codec import unpack

#: The key of what decode_as_json shows for bytes that are not msgpack.
UNDECODABLE = "$undecodable"


def decode_as_json(data: bytes) -> Any:
    """Stored msgpack as a JSON-safe value (as_json), or `{"$undecodable": base64,
    "error": why}` for bytes that are not one msgpack value."""
    try:
        value = unpack(data)
    except (ValueError, msgpack.UnpackException) as exc:
        return {UNDECODABLE: _b64(data), "error": str(exc) or type(exc).__name__}
    return as_json(value)


def is_undecodable(shown: Any) -> bool:
    """True if `shown` (from decode_as_json) stands for bytes that were not msgpack."""
    return isinstance(shown, dict) and UNDECODABLE in shown


def as_json(value: Any) -> Any:
    """`value` (as msgpack decodes it) in values JSON holds: bytes become `{"$bytes":
    base64}`; a float JSON cannot hold `{"$float": "nan" | "inf" | "-inf"}`; a msgpack
    extension `{"$ext": code, "data": base64}`; a msgpack timestamp `{"$timestamp":
    ISO 8601}`; a map key that is not a string becomes its JSON text (7 -> "7")."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": str(value)}
    if isinstance(value, bytes):
        return {"$bytes": _b64(value)}
    if isinstance(value, msgpack.ExtType):  # before tuples: it is a named tuple
        return {"$ext": value.code, "data": _b64(value.data)}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {_key(k): as_json(v) for k, v in value.items()}
    if isinstance(value, msgpack.Timestamp):
        return {"$timestamp": value.to_datetime().isoformat().replace("+00:00", "Z")}
    return {"$repr": repr(value)}  # msgpack decodes to none of these; kept for safety


def _key(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(as_json(key))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
