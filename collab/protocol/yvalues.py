"""JSON values embedded in Yjs v1 updates: find them, compare them, give them back their
writers' bytes. Pure functions over bytes; no pycrdt, no I/O.

pycrdt (yrs) decodes an embedded object into a hash map, so every update it encodes
(a merge, a diff, a document's state) lists the object's keys in a random order.
`WriterBytes` remembers how each writer encoded each such value, by ID, and
`restore` splices those bytes back into updates pycrdt produced.
"""

from __future__ import annotations

import json
import math
import re
import struct
from enum import IntEnum
from typing import Any, NamedTuple


class UpdateFormatError(ValueError):
    """The bytes are not a Yjs v1 update this module can walk."""


class ContentRef(IntEnum):
    """The low 5 bits of a struct's info byte (Yjs src/structs/Item.js `contentRefs`)."""

    GC = 0
    DELETED = 1
    JSON = 2
    BINARY = 3
    STRING = 4
    EMBED = 5
    FORMAT = 6
    TYPE = 7
    ANY = 8
    DOC = 9
    SKIP = 10


#: Type refs (Yjs ContentType `typeRefs`) whose encoding carries a name: an XML
#: element's node name, an XML hook's hook name.
NAMED_TYPE_REFS = frozenset({3, 5})
#: Info byte flags (Yjs Item.write): origin present, right origin present, parentSub present.
HAS_ORIGIN, HAS_RIGHT_ORIGIN, HAS_PARENT_SUB = 0x80, 0x40, 0x20
#: lib0 `writeAny` tags (127 - index in lib0's readAnyLookupTable).
ANY_UNDEFINED, ANY_NULL, ANY_INT, ANY_FLOAT32, ANY_FLOAT64, ANY_BIGINT = (
    127, 126, 125, 124, 123, 122)
ANY_FALSE, ANY_TRUE, ANY_STRING, ANY_OBJECT, ANY_ARRAY, ANY_BYTES = 121, 120, 119, 118, 117, 116
#: Nesting past this many levels is not compared: such a value keeps pycrdt's bytes.
#: (Python's own recursion limit is 1,000; yrs accepts deeper values.)
MAX_COMPARE_DEPTH = 200
#: How close two JSON numbers must be to count as one value (relative): yrs prints
#: floats with up to one unit off in the 16th significant digit.
JSON_FLOAT_TOLERANCE = 1e-12


class EmbeddedValue(NamedTuple):
    """One embedded value: update[start:end] encodes the value at ID (client, clock).

    For ANY the span is one lib0 Any; for EMBED and FORMAT it is the varString
    holding the JSON text (length prefix included). `reorderable` is true when its
    encoding holds an object with two keys or more: the values whose bytes a
    re-encoding can change.
    """

    client: int
    clock: int
    kind: ContentRef
    start: int
    end: int
    reorderable: bool


# -- walking structs -------------------------------------------------------------


def _uint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7
        if shift > 70:
            raise UpdateFormatError("varUint too long")


#: Skip two or four varUints (one or two IDs) in one regex match: an item's origins
#: are IDs whose client part is usually a 5-byte varUint, and decoding them byte by
#: byte in Python was two thirds of the walk.
_ONE_ID = re.compile(rb"(?:[\x80-\xff]*[\x00-\x7f]){2}")
_TWO_IDS = re.compile(rb"(?:[\x80-\xff]*[\x00-\x7f]){4}")


def _skip_string(data: bytes, pos: int) -> int:
    length, pos = _uint(data, pos)
    return pos + length


def _skip_any(data: bytes, pos: int) -> tuple[int, bool]:
    """Skip one lib0 Any at `pos`; returns (end, holds an object of 2+ keys).
    Iterative, so any nesting depth is walked."""
    reorderable = False
    remaining, in_object = 1, False  # values left in the open container; is it an object
    outer: list[tuple[int, bool]] = []  # the same for the containers around it
    while True:
        if not remaining:
            if not outer:
                return pos, reorderable
            remaining, in_object = outer.pop()
            continue
        remaining -= 1
        if in_object:  # a key precedes each value: a varString, usually short
            length = data[pos]
            pos = pos + 1 + length if length < 0x80 else _skip_string(data, pos)
        tag = data[pos]
        pos += 1
        if tag == ANY_STRING:
            length = data[pos]
            pos = pos + 1 + length if length < 0x80 else _skip_string(data, pos)
        elif tag == ANY_INT:
            while data[pos] >= 0x80:
                pos += 1
            pos += 1
        elif tag == ANY_OBJECT or tag == ANY_ARRAY:
            count, pos = _uint(data, pos)
            if tag == ANY_OBJECT and count > 1:
                reorderable = True
            outer.append((remaining, in_object))
            remaining, in_object = count, tag == ANY_OBJECT
        elif tag == ANY_FLOAT64 or tag == ANY_BIGINT:
            pos += 8
        elif tag == ANY_FLOAT32:
            pos += 4
        elif tag == ANY_BYTES:
            pos = _skip_string(data, pos)
        elif tag < ANY_BYTES:
            raise UpdateFormatError(f"unknown Any tag {tag}")


def _utf16_length(raw: bytes) -> int:
    """A ContentString's length in clock ticks: UTF-16 code units, as Yjs counts."""
    if raw.isascii():
        return len(raw)
    try:
        return len(raw.decode("utf-8").encode("utf-16-le")) // 2
    except UnicodeDecodeError as exc:
        raise UpdateFormatError("string is not valid UTF-8") from exc


def embedded_values(update: bytes) -> list[EmbeddedValue]:
    """Every embedded JSON value of `update`, in the order they are encoded.

    Walks the struct section only (the delete set that follows is not read).
    Raises UpdateFormatError for bytes it cannot walk: truncated structs, content
    or Any tags Yjs does not define.
    """
    data = update
    values: list[EmbeddedValue] = []
    skip_one_id, skip_two_ids = _ONE_ID.match, _TWO_IDS.match
    try:
        clients, pos = _uint(data, 0)
        for _ in range(clients):
            structs, pos = _uint(data, pos)
            client, pos = _uint(data, pos)
            clock, pos = _uint(data, pos)
            for _ in range(structs):
                info = data[pos]
                pos += 1
                ref = info & 0x1F
                if ref == ContentRef.GC or ref == ContentRef.SKIP:
                    length, pos = _uint(data, pos)
                    clock += length
                    continue
                # The item's header: its origins (two IDs of two varUints each), or its parent.
                if info & HAS_ORIGIN and info & HAS_RIGHT_ORIGIN:
                    pos = skip_two_ids(data, pos).end()
                elif info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN):
                    pos = skip_one_id(data, pos).end()
                else:
                    pos = _skip_parent(data, pos, info)
                if ref == ContentRef.STRING:  # the common case, inlined
                    length = data[pos]
                    if length < 0x80:
                        pos += 1
                    else:
                        length, pos = _uint(data, pos)
                    end = pos + length
                    raw = data[pos:end]
                    clock += length if raw.isascii() else _utf16_length(raw)
                    pos = end
                    continue
                pos, length = _walk_content(data, pos, ref, client, clock, values)
                clock += length
    except (IndexError, AttributeError):  # AttributeError: a skip found no match
        raise UpdateFormatError("truncated update") from None
    if pos > len(data):
        raise UpdateFormatError("truncated update")
    return values


def _skip_parent(data: bytes, pos: int, info: int) -> int:
    """Skip the parent (and parentSub) of an item that has no origins."""
    parent_is_root_key, pos = _uint(data, pos)
    if parent_is_root_key == 1:
        pos = _skip_string(data, pos)
    else:
        pos = _uint(data, _uint(data, pos)[1])[1]  # the parent type's item ID
    if info & HAS_PARENT_SUB:
        pos = _skip_string(data, pos)
    return pos


def _walk_content(data: bytes, pos: int, ref: int, client: int, clock: int,
                  values: list[EmbeddedValue]) -> tuple[int, int]:
    """Skip one item's content, noting its embedded values; returns (end, clock length)."""
    if ref == ContentRef.STRING:
        length, pos = _uint(data, pos)
        end = pos + length
        return end, _utf16_length(data[pos:end])
    if ref == ContentRef.ANY:
        count, pos = _uint(data, pos)
        for i in range(count):
            end, reorderable = _skip_any(data, pos)
            values.append(EmbeddedValue(client, clock + i, ContentRef.ANY, pos, end, reorderable))
            pos = end
        return pos, count
    if ref == ContentRef.DELETED:
        length, pos = _uint(data, pos)
        return pos, length
    if ref == ContentRef.FORMAT or ref == ContentRef.EMBED:
        if ref == ContentRef.FORMAT:
            pos = _skip_string(data, pos)  # the attribute's name
        end = _skip_string(data, pos)
        text = data[pos:end]
        values.append(EmbeddedValue(client, clock, ContentRef(ref), pos, end,
                                    b"{" in text and b"," in text))
        return end, 1
    if ref == ContentRef.TYPE:
        type_ref, pos = _uint(data, pos)
        if type_ref in NAMED_TYPE_REFS:
            pos = _skip_string(data, pos)
        elif type_ref > 6:
            raise UpdateFormatError(f"unknown type ref {type_ref}")
        return pos, 1
    if ref == ContentRef.BINARY:
        return _skip_string(data, pos), 1
    if ref == ContentRef.JSON:
        count, pos = _uint(data, pos)
        for _ in range(count):
            pos = _skip_string(data, pos)
        return pos, count
    if ref == ContentRef.DOC:
        return _skip_any(data, _skip_string(data, pos))[0], 1
    raise UpdateFormatError(f"unknown content ref {ref}")


# -- comparing values --------------------------------------------------------------


class _TooDeep(Exception):
    pass


_FLOAT64, _FLOAT32 = struct.Struct(">d"), struct.Struct(">f")


def _read_any(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Decode one Any into a comparable form: objects become sorted tuples, every
    value is tagged so that true, 1 and 1.0 stay apart (numbers compare by value,
    whichever width encoded them)."""
    if depth > MAX_COMPARE_DEPTH:
        raise _TooDeep
    tag = data[pos]
    pos += 1
    if tag == ANY_STRING:
        length, pos = _uint(data, pos)
        return ("s", data[pos:pos + length]), pos + length
    if tag == ANY_INT:
        byte = data[pos]
        negative, value, shift = byte & 0x40, byte & 0x3F, 6
        while byte >= 0x80:
            pos += 1
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            shift += 7
        return ("n", float(-value if negative else value)), pos + 1
    if tag == ANY_FLOAT64 or tag == ANY_FLOAT32:
        if tag == ANY_FLOAT64:
            return ("n", _FLOAT64.unpack_from(data, pos)[0]), pos + 8
        return ("n", _FLOAT32.unpack_from(data, pos)[0]), pos + 4
    if tag == ANY_OBJECT or tag == ANY_ARRAY:
        count, pos = _uint(data, pos)
        if tag == ANY_ARRAY:
            items = []
            for _ in range(count):
                item, pos = _read_any(data, pos, depth + 1)
                items.append(item)
            return ("a", tuple(items)), pos
        entries = {}
        for _ in range(count):
            length, pos = _uint(data, pos)
            key = data[pos:pos + length]
            entries[key], pos = _read_any(data, pos + length, depth + 1)
        return ("o", tuple(sorted(entries.items()))), pos
    if tag == ANY_BIGINT:
        return ("b", int.from_bytes(data[pos:pos + 8], "big", signed=True)), pos + 8
    if tag == ANY_BYTES:
        length, pos = _uint(data, pos)
        return ("y", data[pos:pos + length]), pos + length
    if tag in (ANY_UNDEFINED, ANY_NULL, ANY_TRUE, ANY_FALSE):
        return ("c", tag), pos
    raise UpdateFormatError(f"unknown Any tag {tag}")


def _comparable_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_COMPARE_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        return ("o", tuple(("k", (k, _comparable_json(v, depth + 1)))
                           for k, v in sorted(value.items())))
    if isinstance(value, list):
        return ("a", tuple(_comparable_json(v, depth + 1) for v in value))
    if isinstance(value, bool) or value is None:
        return ("c", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("s", value)


def _json_equal(a: Any, b: Any) -> bool:
    """Comparable JSON trees equal, numbers to 12 significant digits: yrs writes a
    float's JSON with its last digit off (7.274613772339665e-56 came back as
    ...664e-56), so the writer's text and pycrdt's differ there."""
    if a[0] != b[0]:
        return False
    if a[0] == "n":
        return a[1] == b[1] or math.isclose(a[1], b[1], rel_tol=JSON_FLOAT_TOLERANCE)
    if a[0] == "a" or a[0] == "o":
        return len(a[1]) == len(b[1]) and all(
            _json_equal(x, y) for x, y in zip(a[1], b[1], strict=True))
    if isinstance(a[1], tuple):  # an object's (key, value) pair
        return a[1][0] == b[1][0] and _json_equal(a[1][1], b[1][1])
    return a[1] == b[1]


def same_value(kind: ContentRef, a: bytes, b: bytes) -> bool:
    """Whether two encodings (spans as `embedded_values` gives them) hold one value:
    objects compare regardless of key order. False for anything it cannot read."""
    if a == b:
        return True
    try:
        if kind == ContentRef.ANY:
            value_a, end_a = _read_any(a, 0, 0)
            value_b, end_b = _read_any(b, 0, 0)
            return end_a == len(a) and end_b == len(b) and value_a == value_b
        text_a, text_b = (data[_uint(data, 0)[1]:] for data in (a, b))
        return _json_equal(_comparable_json(json.loads(text_a)),
                           _comparable_json(json.loads(text_b)))
    # (JSONDecodeError is a ValueError.)
    except (IndexError, ValueError, OverflowError, RecursionError, _TooDeep, struct.error):
        return False


def same_update(a: bytes, b: bytes) -> bool:
    """Whether two updates are the same byte for byte, except for the key order of
    their embedded objects (what two pycrdt encodings of one document differ by)."""
    if a == b:
        return True
    try:
        values_a, values_b = embedded_values(a), embedded_values(b)
    except UpdateFormatError:
        return False
    if len(values_a) != len(values_b):
        return False
    last_a = last_b = 0
    for va, vb in zip(values_a, values_b, strict=True):
        if (va.client, va.clock, va.kind) != (vb.client, vb.clock, vb.kind) \
                or a[last_a:va.start] != b[last_b:vb.start] \
                or not same_value(va.kind, a[va.start:va.end], b[vb.start:vb.end]):
            return False
        last_a, last_b = va.end, vb.end
    return a[last_a:] == b[last_b:]


# -- remembering writers' bytes ------------------------------------------------------


def may_hold_objects(update: bytes) -> bool:
    """A cheap test (two byte scans): False means `update` embeds no object of 2+
    keys, so noting or restoring it has nothing to do. The Any object tag is 0x76
    ('v'); the JSON of embeds and format attributes opens objects with '{'."""
    return b"\x76" in update or b"{" in update


class WriterBytes:
    """The writers' encodings of a document's reorderable embedded values, by ID.

    An ID's content never changes in Yjs, so the first encoding seen for an ID is
    its writer's. Memory: about the size of those values again (only values holding
    an object of 2+ keys are kept), until `forget_absent` drops deleted ones.
    """

    __slots__ = ("_by_client", "_checked", "values")

    def __init__(self) -> None:
        self._by_client: dict[int, dict[int, bytes]] = {}
        #: IDs whose remembered bytes were once found to hold the value pycrdt has:
        #: never compared again (an integrated ID's content does not change).
        self._checked: dict[int, set[int]] = {}
        self.values = 0  # how many are remembered

    def note(self, update: bytes) -> None:
        """Remember the reorderable values of an update the document accepted.
        An update this module cannot walk is skipped: its values keep pycrdt's bytes."""
        if not may_hold_objects(update):
            return
        try:
            found = embedded_values(update)
        except UpdateFormatError:
            return
        for value in found:
            if value.reorderable:
                clocks = self._by_client.setdefault(value.client, {})
                if value.clock not in clocks:
                    clocks[value.clock] = update[value.start:value.end]
                    self.values += 1

    def restore(self, update: bytes) -> bytes:
        """`update` (as pycrdt encoded it) with each remembered value spliced back in
        its writer's bytes. A value whose remembered bytes do not hold the same value
        (a forged duplicate ID) keeps pycrdt's bytes; so does an update this module
        cannot walk. The result decodes to exactly the same document."""
        if not self.values or not may_hold_objects(update):
            return update
        try:
            found = embedded_values(update)
        except UpdateFormatError:
            return update
        pieces: list[bytes] = []
        last = 0
        by_client, checked = self._by_client, self._checked
        for value in found:
            if not value.reorderable:
                continue
            writer = by_client.get(value.client, _NOTHING).get(value.clock)
            if writer is None:
                continue
            ours = update[value.start:value.end]
            if writer == ours:
                continue
            if value.clock not in checked.get(value.client, _NOTHING):
                if not same_value(value.kind, writer, ours):
                    continue
                checked.setdefault(value.client, set()).add(value.clock)
            pieces += (update[last:value.start], writer)
            last = value.end
        if not pieces:
            return update
        pieces.append(update[last:])
        return b"".join(pieces)

    def forget_absent(self, snapshot: bytes, state: dict[int, int]) -> None:
        """Drop the values a compacted `snapshot` no longer holds (deleted and garbage
        collected): those with a clock below `state` (the snapshot's state vector,
        {client: clock}) that it does not contain. Newer ones stay."""
        if not self.values:
            return
        try:
            present = {(v.client, v.clock) for v in embedded_values(snapshot) if v.reorderable}
        except UpdateFormatError:
            return
        for client, clocks in list(self._by_client.items()):
            below = state.get(client, 0)
            kept = {clock: raw for clock, raw in clocks.items()
                    if clock >= below or (client, clock) in present}
            self.values -= len(clocks) - len(kept)
            if kept:
                self._by_client[client] = kept
            else:
                del self._by_client[client]
            checked = self._checked.get(client)
            if checked is not None:
                checked &= kept.keys()
                if not checked:
                    del self._checked[client]


_NOTHING: dict = {}
