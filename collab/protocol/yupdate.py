"""Yjs v1 updates read struct by struct, as pure functions over bytes (no pycrdt,
no I/O): where each client's structs and the delete set lie, where each embedded
JSON value lies and under which ID, how deep values nest, and several updates
merged by concatenating their structs, so every struct keeps its writer's bytes.

Values a client stores in a shared type (`ymap.set("k", {...})`) travel as lib0
"any" values, and yrs decodes them by recursion: a 60 KB update nesting lists
30,000 deep overflows the stack and kills the process on `apply_update`, with no
exception to catch. So every update from a client is walked first, with a stack
of our own (`check_value_depth`), and refused if a value nests deeper than
MAX_VALUE_DEPTH.

The format is Yjs's (src/utils/encoding.js and src/structs/ in yjs 13.6; yrs
`update.rs`) and lib0's (`writeVarUint`, `writeAny`).
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import NamedTuple

from collab.errors import InvalidPayload
from collab.protocol.ywire import write_var_uint

#: Levels a value stored in a document may nest (a list in a map in a list...).
#: Real documents nest a handful (tldraw's shapes, settings objects); yrs crashes
#: somewhere past 20,000 and lib0's JavaScript encoder overflows before that.
MAX_VALUE_DEPTH = 100


class UpdateFormatError(ValueError):
    """The bytes are not a Yjs v1 update this module can walk."""


class TooDeep(UpdateFormatError):
    """A value nests deeper than the walk was told to allow."""


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
#: Shared type refs a client may send: Array ... XmlText, and yrs's "undefined".
TYPE_REFS = frozenset({0, 1, 2, 3, 4, 5, 6, 15})
#: Info byte flags (Yjs Item.write): origin present, right origin present, parentSub present.
HAS_ORIGIN, HAS_RIGHT_ORIGIN, HAS_PARENT_SUB = 0x80, 0x40, 0x20
#: lib0 `writeAny` tags (127 - index in lib0's readAnyLookupTable).
ANY_UNDEFINED, ANY_NULL, ANY_INT, ANY_FLOAT32, ANY_FLOAT64, ANY_BIGINT = (
    127, 126, 125, 124, 123, 122)
ANY_FALSE, ANY_TRUE, ANY_STRING, ANY_OBJECT, ANY_ARRAY, ANY_BYTES = 121, 120, 119, 118, 117, 116
#: The info byte of a Skip struct (ref 10, no flags): "these clocks are not in this update".
SKIP_INFO = bytes((10,))


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


class ClientBlock(NamedTuple):
    """One client's run of structs in an update: clocks [clock, end_clock), encoded
    as `structs` structs in update[start:end] (after the block's header)."""

    client: int
    clock: int
    end_clock: int
    structs: int
    start: int
    end: int


class Layout(NamedTuple):
    """Where things lie in an update: its client blocks, the offset of its delete
    set (the end of the struct section) and its embedded values."""

    blocks: list[ClientBlock]
    delete_set: int
    values: list[EmbeddedValue]


# -- walking structs -------------------------------------------------------------


def read_uint(data: bytes, pos: int) -> tuple[int, int]:
    """A lib0 varUint at `pos`: (value, next position). Raises IndexError if the bytes
    end first (callers turn it into UpdateFormatError)."""
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
    length, pos = read_uint(data, pos)
    return pos + length


def skip_any(data: bytes, pos: int, max_depth: int | None = None) -> tuple[int, bool]:
    """Skip one lib0 Any at `pos`; returns (end, holds an object of 2+ keys).
    Iterative, so any nesting depth is walked; past `max_depth` lists and maps in
    one another it raises TooDeep."""
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
            count, pos = read_uint(data, pos)
            if tag == ANY_OBJECT and count > 1:
                reorderable = True
            if max_depth is not None and len(outer) >= max_depth:
                raise TooDeep(f"a value nests deeper than {max_depth} levels")
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


def read_layout(update: bytes, known: dict[int, dict[int, int]] | None = None,
                max_depth: int | None = None) -> Layout:
    """Walk the struct section of a Yjs v1 update (the delete set is not read).

    `known` ({client: {clock: length}}) gives the byte length of Any values the
    caller has seen in this encoding before: they are stepped over, not walked
    (about 4 µs saved per 12-key object); their EmbeddedValue says reorderable.
    Raises UpdateFormatError for bytes it cannot walk: truncated structs, content
    or Any tags Yjs does not define; TooDeep (one) for a value walked that nests
    more than `max_depth` lists and maps.
    """
    data = update
    values: list[EmbeddedValue] = []
    blocks: list[ClientBlock] = []
    skip_one_id, skip_two_ids = _ONE_ID.match, _TWO_IDS.match
    try:
        clients, pos = read_uint(data, 0)
        for _ in range(clients):
            structs, pos = read_uint(data, pos)
            client, pos = read_uint(data, pos)
            first_clock, pos = read_uint(data, pos)
            clock, start = first_clock, pos
            for _ in range(structs):
                info = data[pos]
                pos += 1
                ref = info & 0x1F
                if ref == ContentRef.GC or ref == ContentRef.SKIP:
                    length, pos = read_uint(data, pos)
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
                        length, pos = read_uint(data, pos)
                    end = pos + length
                    raw = data[pos:end]
                    clock += length if raw.isascii() else _utf16_length(raw)
                    pos = end
                    continue
                pos, length = _walk_content(data, pos, ref, client, clock, values,
                                            known.get(client) if known else None, max_depth)
                clock += length
            blocks.append(ClientBlock(client, first_clock, clock, structs, start, pos))
    except (IndexError, AttributeError):  # AttributeError: a skip found no match
        raise UpdateFormatError("truncated update") from None
    if pos > len(data):
        raise UpdateFormatError("truncated update")
    return Layout(blocks, pos, values)


def embedded_values(update: bytes) -> list[EmbeddedValue]:
    """Every embedded JSON value of `update`, in the order they are encoded.
    Raises UpdateFormatError as `read_layout` does."""
    return read_layout(update).values


def check_value_depth(update: bytes, max_depth: int = MAX_VALUE_DEPTH) -> None:
    """Raise InvalidPayload if `update` holds a value nested deeper than `max_depth`,
    or if it is not a Yjs v1 update this walk can read (then it could hide one).

    An update with no more than `max_depth` list and map markers cannot nest that
    deep, so most updates (typing, small edits) cost two byte counts, not a walk.
    """
    if update.count(ANY_ARRAY) + update.count(ANY_OBJECT) <= max_depth:
        return
    try:
        read_layout(update, max_depth=max_depth)
    except UpdateFormatError as exc:
        raise InvalidPayload(f"update rejected: {exc}") from None


def _skip_parent(data: bytes, pos: int, info: int) -> int:
    """Skip the parent (and parentSub) of an item that has no origins."""
    parent_is_root_key, pos = read_uint(data, pos)
    if parent_is_root_key == 1:
        pos = _skip_string(data, pos)
    else:
        pos = read_uint(data, read_uint(data, pos)[1])[1]  # the parent type's item ID
    if info & HAS_PARENT_SUB:
        pos = _skip_string(data, pos)
    return pos


def _walk_content(data: bytes, pos: int, ref: int, client: int, clock: int,
                  values: list[EmbeddedValue], known: dict[int, int] | None,
                  max_depth: int | None) -> tuple[int, int]:
    """Skip one item's content, noting its embedded values; returns (end, clock length)."""
    if ref == ContentRef.STRING:
        length, pos = read_uint(data, pos)
        end = pos + length
        return end, _utf16_length(data[pos:end])
    if ref == ContentRef.ANY:
        count, pos = read_uint(data, pos)
        for i in range(count):
            length = known.get(clock + i) if known else None
            if length is None:
                end, reorderable = skip_any(data, pos, max_depth)
            else:
                end, reorderable = pos + length, True
            values.append(EmbeddedValue(client, clock + i, ContentRef.ANY, pos, end, reorderable))
            pos = end
        return pos, count
    if ref == ContentRef.DELETED:
        length, pos = read_uint(data, pos)
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
        type_ref, pos = read_uint(data, pos)
        if type_ref not in TYPE_REFS:
            raise UpdateFormatError(f"unknown shared type ref {type_ref}")
        if type_ref in NAMED_TYPE_REFS:
            pos = _skip_string(data, pos)
        return pos, 1
    if ref == ContentRef.BINARY:
        return _skip_string(data, pos), 1
    if ref == ContentRef.JSON:
        count, pos = read_uint(data, pos)
        for _ in range(count):
            pos = _skip_string(data, pos)
        return pos, count
    if ref == ContentRef.DOC:
        return skip_any(data, _skip_string(data, pos), max_depth)[0], 1
    raise UpdateFormatError(f"unknown content ref {ref}")


# -- delete sets and merging ------------------------------------------------------------


def read_delete_set(update: bytes, pos: int) -> dict[int, list[tuple[int, int]]]:
    """The delete set starting at `pos` (a Layout's `delete_set`): {client: [(clock,
    length), ...]}. Raises UpdateFormatError if it is truncated."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    try:
        clients, pos = read_uint(update, pos)
        for _ in range(clients):
            client, pos = read_uint(update, pos)
            count, pos = read_uint(update, pos)
            found = ranges.setdefault(client, [])
            for _ in range(count):
                clock, pos = read_uint(update, pos)
                length, pos = read_uint(update, pos)
                found.append((clock, length))
    except IndexError:
        raise UpdateFormatError("truncated delete set") from None
    return ranges


def write_delete_set(ranges: dict[int, list[tuple[int, int]]]) -> bytes:
    """Encode a delete set: each client's ranges sorted, overlapping or adjacent ones
    joined (as Yjs's sortAndMergeDeleteSet), clients in descending order."""
    clients = [client for client in sorted(ranges, reverse=True) if ranges[client]]
    out = [write_var_uint(len(clients))]
    for client in clients:
        joined: list[list[int]] = []
        for clock, length in sorted(ranges[client]):
            if joined and joined[-1][0] + joined[-1][1] >= clock:
                last = joined[-1]
                last[1] = max(last[1], clock + length - last[0])
            else:
                joined.append([clock, length])
        out += (write_var_uint(client), write_var_uint(len(joined)))
        out += (write_var_uint(n) for pair in joined for n in pair)
    return b"".join(out)


#: The delete set of an update that deletes nothing.
NO_DELETIONS = b"\x00"


def concatenate(updates: list[tuple[bytes, Layout]]) -> bytes | None:
    """Several updates (each with its layout) as one, every struct in its writer's
    bytes: each client's runs in clock order in one block (a gap between runs becomes
    a Skip struct, as in Yjs's mergeUpdates), then the union of the delete sets.

    Returns None if two runs of one client overlap (the same structs sent twice, or
    forged): those need a real merge. Raises UpdateFormatError for a truncated
    delete set.
    """
    runs: dict[int, list[tuple[int, int, int, bytes]]] = {}
    for update, layout in updates:
        for block in layout.blocks:
            if block.structs:
                runs.setdefault(block.client, []).append(
                    (block.clock, block.end_clock, block.structs, update[block.start:block.end]))
    out = [write_var_uint(len(runs))]
    for client in sorted(runs, reverse=True):
        mine = sorted(runs[client])
        parts: list[bytes] = []
        structs, clock = 0, mine[0][0]
        for start, end, count, body in mine:
            if start < clock:
                return None
            if start > clock:
                parts += (SKIP_INFO, write_var_uint(start - clock))
                structs += 1
            parts.append(body)
            structs += count
            clock = end
        out += (write_var_uint(structs), write_var_uint(client), write_var_uint(mine[0][0]))
        out += parts
    if all(update[layout.delete_set:] == NO_DELETIONS for update, layout in updates):
        out.append(NO_DELETIONS)
    else:
        deleted: dict[int, list[tuple[int, int]]] = {}
        for update, layout in updates:
            for client, ranges in read_delete_set(update, layout.delete_set).items():
                deleted.setdefault(client, []).extend(ranges)
        out.append(write_delete_set(deleted))
    return b"".join(out)


# -- what an update refers to ---------------------------------------------------------


def referenced_ids(update: bytes) -> list[tuple[int, int, int]]:
    """Every ID range `update` holds or points at, as (client, clock, length): its
    structs (skips left out), each item's origins and parent item, and its delete
    set. Whatever an update builds on is in here. Raises UpdateFormatError for
    bytes it cannot walk."""
    data = update
    found: list[tuple[int, int, int]] = []
    try:
        clients, pos = read_uint(data, 0)
        for _ in range(clients):
            structs, pos = read_uint(data, pos)
            client, pos = read_uint(data, pos)
            clock, pos = read_uint(data, pos)
            for _ in range(structs):
                info = data[pos]
                pos += 1
                ref = info & 0x1F
                if ref == ContentRef.GC or ref == ContentRef.SKIP:
                    length, pos = read_uint(data, pos)
                    if ref == ContentRef.GC:
                        found.append((client, clock, length))
                    clock += length
                    continue
                for flag in (HAS_ORIGIN, HAS_RIGHT_ORIGIN):
                    if info & flag:
                        origin_client, pos = read_uint(data, pos)
                        origin_clock, pos = read_uint(data, pos)
                        found.append((origin_client, origin_clock, 1))
                if not info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN):
                    parent_is_root_key, pos = read_uint(data, pos)
                    if parent_is_root_key == 1:
                        pos = _skip_string(data, pos)
                    else:
                        parent_client, pos = read_uint(data, pos)
                        parent_clock, pos = read_uint(data, pos)
                        found.append((parent_client, parent_clock, 1))
                    if info & HAS_PARENT_SUB:
                        pos = _skip_string(data, pos)
                pos, length = _walk_content(data, pos, ref, client, clock, [], None, None)
                found.append((client, clock, length))
                clock += length
    except IndexError:
        raise UpdateFormatError("truncated update") from None
    for client, ranges in read_delete_set(data, pos).items():
        found.extend((client, clock, length) for clock, length in ranges)
    return found
