"""JSON values embedded in Yjs v1 updates: compare them whatever their key order, and
give them back their writers' bytes. Pure functions over bytes; no pycrdt, no I/O.

pycrdt (yrs) decodes an embedded object into a hash map, so every update it encodes
(a merge, a diff, a document's state) lists the object's keys in a random order.
`WriterBytes` remembers how each writer encoded each such value, by ID, and
`restore` splices those bytes back into updates pycrdt produced (docs/fidelity.md).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from collab.protocol.yupdate import (
    ANY_ARRAY,
    ANY_BIGINT,
    ANY_BYTES,
    ANY_FALSE,
    ANY_FLOAT32,
    ANY_FLOAT64,
    ANY_INT,
    ANY_NULL,
    ANY_OBJECT,
    ANY_STRING,
    ANY_TRUE,
    ANY_UNDEFINED,
    ContentRef,
    Layout,
    TooDeep,
    UpdateFormatError,
    concatenate,
    embedded_values,
    read_layout,
    read_uint,
    skip_any,
)

#: Nesting past this many levels is not compared: such a value keeps pycrdt's bytes.
#: (Python's own recursion limit is 1,000; yrs accepts deeper values.)
MAX_COMPARE_DEPTH = 200
#: How close two JSON numbers must be to count as one value (relative): yrs prints
#: floats with up to one unit off in the 16th significant digit.
JSON_FLOAT_TOLERANCE = 1e-12


# -- comparing values --------------------------------------------------------------


_FLOAT64, _FLOAT32 = struct.Struct(">d"), struct.Struct(">f")


def _read_any(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Decode one Any into a comparable form: objects become sorted tuples, every
    value is tagged so that true, 1 and 1.0 stay apart (numbers compare by value,
    whichever width encoded them)."""
    if depth > MAX_COMPARE_DEPTH:
        raise TooDeep("too deep to compare")
    tag = data[pos]
    pos += 1
    if tag == ANY_STRING:
        length, pos = read_uint(data, pos)
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
        count, pos = read_uint(data, pos)
        if tag == ANY_ARRAY:
            items = []
            for _ in range(count):
                item, pos = _read_any(data, pos, depth + 1)
                items.append(item)
            return ("a", tuple(items)), pos
        entries = {}
        for _ in range(count):
            length, pos = read_uint(data, pos)
            key = data[pos:pos + length]
            entries[key], pos = _read_any(data, pos + length, depth + 1)
        return ("o", tuple(sorted(entries.items()))), pos
    if tag == ANY_BIGINT:
        return ("b", int.from_bytes(data[pos:pos + 8], "big", signed=True)), pos + 8
    if tag == ANY_BYTES:
        length, pos = read_uint(data, pos)
        return ("y", data[pos:pos + length]), pos + length
    if tag in (ANY_UNDEFINED, ANY_NULL, ANY_TRUE, ANY_FALSE):
        return ("c", tag), pos
    raise UpdateFormatError(f"unknown Any tag {tag}")


def _comparable_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_COMPARE_DEPTH:
        raise TooDeep("too deep to compare")
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


def _object_entries(span: bytes) -> dict[bytes, bytes]:
    """An encoded Any object's entries, {key: the value's bytes} (a repeated key:
    the last one, as yrs and JavaScript read it). Raises IndexError or
    UpdateFormatError if `span` is not exactly one object."""
    count, pos = read_uint(span, 1)
    entries = {}
    for _ in range(count):
        length = span[pos]
        if length < 0x80:
            pos += 1
        else:
            length, pos = read_uint(span, pos)
        key = span[pos:pos + length]
        start = pos = pos + length
        tag = span[pos]  # the common scalars inline, containers walked
        if tag == ANY_STRING and span[pos + 1] < 0x80:
            pos += 2 + span[pos + 1]
        elif tag == ANY_INT:
            pos += 1
            while span[pos] >= 0x80:
                pos += 1
            pos += 1
        elif tag == ANY_FLOAT64 or tag == ANY_BIGINT:
            pos += 9
        elif tag == ANY_TRUE or tag == ANY_FALSE or tag == ANY_NULL or tag == ANY_UNDEFINED:
            pos += 1
        elif tag == ANY_FLOAT32:
            pos += 5
        else:
            pos = skip_any(span, pos)[0]
        entries[key] = span[start:pos]
    if pos != len(span):
        raise UpdateFormatError("not one object")
    return entries


def _array_items(span: bytes) -> list[bytes]:
    count, pos = read_uint(span, 1)
    items = []
    for _ in range(count):
        start, pos = pos, skip_any(span, pos)[0]
        items.append(span[start:pos])
    if pos != len(span):
        raise UpdateFormatError("not one array")
    return items


def _same_any(a: bytes, b: bytes, depth: int) -> bool:
    """Whether two encoded Any values are one value, objects in any key order. Walks
    entry by entry and compares bytes wherever they are equal (for a reordered flat
    object: every value), so it decodes next to nothing."""
    if a == b:
        return True
    if depth > MAX_COMPARE_DEPTH:
        raise TooDeep("too deep to compare")
    tag = a[0]
    if tag == ANY_OBJECT and b[0] == ANY_OBJECT:
        entries_a, entries_b = _object_entries(a), _object_entries(b)
        return entries_a == entries_b or (entries_a.keys() == entries_b.keys() and all(
            _same_any(value, entries_b[key], depth + 1) for key, value in entries_a.items()))
    if tag == ANY_ARRAY and b[0] == ANY_ARRAY:
        items_a, items_b = _array_items(a), _array_items(b)
        return len(items_a) == len(items_b) and all(
            _same_any(x, y, depth + 1) for x, y in zip(items_a, items_b, strict=True))
    # Scalars in other bytes: one number in two widths, or two values.
    value_a, end_a = _read_any(a, 0, depth)
    value_b, end_b = _read_any(b, 0, depth)
    return end_a == len(a) and end_b == len(b) and value_a == value_b


def same_value(kind: ContentRef, a: bytes, b: bytes) -> bool:
    """Whether two encodings (spans as `embedded_values` gives them) hold one value:
    objects compare regardless of key order. False for anything it cannot read."""
    if a == b:
        return True
    try:
        if kind == ContentRef.ANY:
            return _same_any(a, b, 0)
        text_a, text_b = (data[read_uint(data, 0)[1]:] for data in (a, b))
        return _json_equal(_comparable_json(json.loads(text_a)),
                           _comparable_json(json.loads(text_b)))
    # (JSONDecodeError is a ValueError; UpdateFormatError and TooDeep too.)
    except (IndexError, ValueError, OverflowError, RecursionError, struct.error):
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


def same_structure(a: bytes, layout_a: Layout, b: bytes, layout_b: Layout) -> bool:
    """Whether two walked updates differ at most inside their embedded values: the
    same values at the same IDs, Any values as long, every byte outside them equal.
    Two pycrdt encodings of one document differ just so (and a JSON value's text
    may differ too: yrs prints floats differently from one doc to another)."""
    values_a, values_b = layout_a.values, layout_b.values
    if len(values_a) != len(values_b):
        return False
    last_a = last_b = 0
    for va, vb in zip(values_a, values_b, strict=True):
        if va.clock != vb.clock or va.client != vb.client or va.kind != vb.kind \
                or a[last_a:va.start] != b[last_b:vb.start]:
            return False
        if va.kind == ContentRef.ANY and va.end - va.start != vb.end - vb.start:
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

    __slots__ = ("_by_client", "_checked", "_drain", "values")

    def __init__(self) -> None:
        self._by_client: dict[int, dict[int, bytes]] = {}
        #: Values whose remembered bytes were once found to hold the value pycrdt has,
        #: in as many bytes, {client: {clock: length}}: never compared again (an
        #: integrated ID's content does not change), and stepped over by length.
        self._checked: dict[int, dict[int, int]] = {}
        #: Layouts of the updates noted since the last `concatenate`, by update.
        self._drain: dict[bytes, Layout] = {}
        self.values = 0  # how many are remembered

    def remember(self, update: bytes, verified: bool = False) -> Layout | None:
        """Remember the reorderable values of an update the document accepted.
        Returns the update's layout if it holds any, else None. An update this
        module cannot walk is skipped: its values keep pycrdt's bytes.

        `verified`: the update is a snapshot compaction wrote, whose values
        hold what pycrdt holds (checked then, or pycrdt's own bytes): they need no
        check on their first `restore`."""
        if not may_hold_objects(update):
            return None
        try:
            layout = read_layout(update)
        except UpdateFormatError:
            return None
        found = False
        for value in layout.values:
            if value.reorderable:
                found = True
                clocks = self._by_client.setdefault(value.client, {})
                if value.clock not in clocks:
                    clocks[value.clock] = update[value.start:value.end]
                    self.values += 1
                    if verified and value.kind == ContentRef.ANY:
                        self._checked.setdefault(value.client, {})[value.clock] = \
                            value.end - value.start
        return layout if found else None

    def note(self, update: bytes) -> None:
        """`remember`, and keep the layout of an update holding objects for the
        broadcast that `concatenate` builds when the mailbox drain ends."""
        if b"\x76" not in update and b"{" not in update:  # may_hold_objects, inlined:
            return  # this runs for every update a document applies
        layout = self.remember(update)
        if layout is not None:
            self._drain[update] = layout

    def concatenate(self, updates: list[bytes]) -> bytes | None:
        """One drain's updates (all noted, at least one) as one update: a single one
        as it is; several that hold objects concatenated struct by struct, so each
        keeps its writer's bytes (no re-encoding, nothing to restore). None when
        pycrdt should merge them: none holds an object (its merge is faster), or two
        overlap, or one cannot be walked. Forgets the drain's layouts either way."""
        if not self._drain:
            return updates[0] if len(updates) == 1 else None
        layouts, self._drain = self._drain, {}
        if len(updates) == 1:
            return updates[0]
        try:
            return concatenate([(update, layouts.get(update) or read_layout(update))
                                for update in updates])
        except UpdateFormatError:
            return None

    def restore(self, update: bytes) -> bytes:
        """`update` (as pycrdt encoded it) with each remembered value spliced back in
        its writer's bytes. A value whose remembered bytes do not hold the same value
        (a forged duplicate ID) keeps pycrdt's bytes; so does an update this module
        cannot walk. The result decodes to the same document."""
        if not self.values or not may_hold_objects(update):
            return update
        layout = self.layout(update)
        return update if layout is None else self.splice(update, layout)

    def layout(self, update: bytes) -> Layout | None:
        """Walk an update pycrdt encoded, stepping over the values checked before by
        their length; None if it cannot be walked. If a step landed wrong (a value
        pycrdt now encodes in another length), everything is checked again."""
        if self._checked:
            try:
                return self._walk(update, self._checked)
            except _OutOfStep:
                self._checked = {}
        try:
            return self._walk(update, None)
        except _OutOfStep:
            return None

    @staticmethod
    def _walk(update: bytes, checked: dict[int, dict[int, int]] | None) -> Layout | None:
        try:
            layout = read_layout(update, checked)
            if checked:  # values were stepped over by length: was every step right?
                _check_delete_set(update, layout.delete_set)
        except UpdateFormatError:
            if checked:
                raise _OutOfStep from None
            return None
        return layout

    def splice(self, update: bytes, layout: Layout) -> bytes:
        """`restore`, given `update`'s layout (from `layout`)."""
        try:
            return self._splice(update, layout)
        except _OutOfStep:
            self._checked = {}
            layout_again = self.layout(update)
            return update if layout_again is None else self._splice(update, layout_again)

    def _splice(self, update: bytes, layout: Layout) -> bytes:
        pieces: list[bytes] = []
        last = 0
        by_client, checked = self._by_client, self._checked
        for value in layout.values:
            if not value.reorderable:
                continue
            writer = by_client.get(value.client, _NOTHING).get(value.clock)
            if writer is None:
                continue
            ours = update[value.start:value.end]
            if writer == ours:
                continue
            if value.clock in checked.get(value.client, _NOTHING):
                if ours[:2] != writer[:2]:  # stepped over by length, yet not an object
                    raise _OutOfStep  # of as many keys
            elif same_value(value.kind, writer, ours):
                # Only Any values: pycrdt's JSON text of a float varies from doc to doc.
                if len(writer) == len(ours) and value.kind == ContentRef.ANY:
                    checked.setdefault(value.client, {})[value.clock] = len(ours)
            else:
                continue
            pieces += (update[last:value.start], writer)
            last = value.end
        if not pieces:
            return update
        pieces.append(update[last:])
        return b"".join(pieces)

    def forget_absent(self, layout: Layout, state: dict[int, int]) -> None:
        """Forget the values a compacted snapshot no longer holds (deleted, garbage
        collected): those with a clock below `state` (the state vector it was made
        at, {client: clock}) that its `layout` lacks. Values written since stay."""
        present = {(v.client, v.clock) for v in layout.values}
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
                checked = {clock: n for clock, n in checked.items() if clock in kept}
                if checked:
                    self._checked[client] = checked
                else:
                    del self._checked[client]


_NOTHING: dict = {}


class _OutOfStep(Exception):
    """A walk that stepped over values by length landed where no struct starts."""


def _check_delete_set(update: bytes, pos: int) -> None:
    """Raises UpdateFormatError unless a delete set starts at `pos` and ends the update."""
    clients, pos = read_uint(update, pos) if pos < len(update) else (0, -1)
    if pos < 0:
        raise UpdateFormatError("no delete set")
    try:
        for _ in range(clients):
            pos = read_uint(update, pos)[1]
            count, pos = read_uint(update, pos)
            for _ in range(2 * count):
                pos = read_uint(update, pos)[1]
    except IndexError:
        raise UpdateFormatError("truncated delete set") from None
    if pos != len(update):
        raise UpdateFormatError("bytes after the delete set")
