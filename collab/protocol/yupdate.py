"""How deeply a Yjs v1 update nests its values, checked before pycrdt reads it. Pure.

Values a client stores in a shared type (`ymap.set("k", {...})`) travel as lib0
"any" values, and yrs decodes them by recursion: a 60 KB update nesting lists
30,000 deep overflows the stack and kills the process on `apply_update`, with no
exception to catch. So every update from a client is walked here first, with a
stack of our own, and refused (`InvalidPayload`) if a value nests deeper than
MAX_VALUE_DEPTH. The walk reads the v1 struct format (Yjs `encoding.js`,
`UpdateDecoderV1`; yrs `update.rs`) just far enough to find each value.
"""

from __future__ import annotations

from collab.errors import InvalidPayload, RemoteProtocolError
from collab.protocol.ywire import read_var_uint

#: Levels a value stored in a document may nest (a list in a map in a list...).
#: Real documents nest a handful (tldraw's shapes, settings objects); yrs crashes
#: somewhere past 20,000 and lib0's JavaScript encoder overflows before that.
MAX_VALUE_DEPTH = 100

# Struct info byte (Yjs `Item.write`): the content kind in the low five bits and
# which of origin, right origin and parent key follow.
_CONTENT = 0x1F
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC, _SKIP = range(11)
#: Shared type refs (ContentType) that carry a name: XmlElement and XmlHook.
_NAMED_TYPES = (3, 5)
#: Shared type refs a client may send: Array ... XmlText, and yrs's "undefined".
_TYPE_REFS = (0, 1, 2, 3, 4, 5, 6, 15)
# lib0 "any" type bytes (`encoding.writeAny`).
_UNDEFINED, _NULL, _VAR_INT, _FLOAT32, _FLOAT64, _BIGINT = 127, 126, 125, 124, 123, 122
_FALSE, _TRUE, _TEXT, _OBJECT, _ARRAY, _BYTES = 121, 120, 119, 118, 117, 116
_FIXED_SIZE = {_UNDEFINED: 0, _NULL: 0, _FALSE: 0, _TRUE: 0, _FLOAT32: 4, _FLOAT64: 8,
               _BIGINT: 8}


def check_value_depth(update: bytes, max_depth: int = MAX_VALUE_DEPTH) -> None:
    """Raise InvalidPayload if `update` holds a value nested deeper than `max_depth`,
    or if it is not a Yjs v1 update this walk can read (then it could hide one).

    An update with no more than `max_depth` list and map markers cannot nest that
    deep, so most updates (typing, small edits) cost two byte counts, not a walk.
    """
    if update.count(_ARRAY) + update.count(_OBJECT) <= max_depth:
        return
    try:
        _walk_update(update, max_depth)
    except RemoteProtocolError as exc:
        raise InvalidPayload(f"update rejected: {exc.message}") from None
    except IndexError:
        raise InvalidPayload("update rejected: truncated") from None


def _walk_update(data: bytes, max_depth: int) -> None:
    """Read every struct of the update (the delete set after them holds no values)."""
    clients, pos = read_var_uint(data, 0)
    for _ in range(clients):
        structs, pos = read_var_uint(data, pos)
        _, pos = read_var_uint(data, pos)  # client
        _, pos = read_var_uint(data, pos)  # first clock
        for _ in range(structs):
            pos = _skip_struct(data, pos, max_depth)


def _skip_struct(data: bytes, pos: int, max_depth: int) -> int:
    info = data[pos]
    pos += 1
    content = info & _CONTENT
    if content in (_GC, _SKIP):
        return read_var_uint(data, pos)[1]  # its length
    if info & _HAS_ORIGIN:
        pos = _skip_uints(data, pos, 2)  # origin id: client, clock
    if info & _HAS_RIGHT_ORIGIN:
        pos = _skip_uints(data, pos, 2)
    if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):  # the parent is written out
        root, pos = read_var_uint(data, pos)
        pos = _skip_bytes(data, pos) if root == 1 else _skip_uints(data, pos, 2)
        if info & _HAS_PARENT_SUB:
            pos = _skip_bytes(data, pos)  # the map key
    return _skip_content(data, pos, content, max_depth)


def _skip_content(data: bytes, pos: int, content: int, max_depth: int) -> int:
    if content == _DELETED:
        return read_var_uint(data, pos)[1]
    if content in (_BINARY, _STRING, _EMBED):  # bytes, a string, an embed's JSON
        return _skip_bytes(data, pos)
    if content == _FORMAT:  # key, then its JSON value (serde_json bounds its depth)
        return _skip_bytes(data, _skip_bytes(data, pos))
    if content == _JSON:
        count, pos = read_var_uint(data, pos)
        for _ in range(count):
            pos = _skip_bytes(data, pos)
        return pos
    if content == _TYPE:
        ref, pos = read_var_uint(data, pos)
        if ref not in _TYPE_REFS:
            raise InvalidPayload(f"unknown shared type ref {ref}")
        return _skip_bytes(data, pos) if ref in _NAMED_TYPES else pos
    if content == _ANY:
        count, pos = read_var_uint(data, pos)
        for _ in range(count):
            pos = _skip_any(data, pos, max_depth)
        return pos
    if content == _DOC:  # a subdocument: its guid and its options
        return _skip_any(data, _skip_bytes(data, pos), max_depth)
    raise InvalidPayload(f"unknown content kind {content}")


def _skip_any(data: bytes, pos: int, max_depth: int) -> int:
    """Skip one lib0 "any" value, however nested, without recursion. `left[i]` is
    how many values the i-th open list or map still holds, `keyed[i]` whether
    they come with keys (a map)."""
    left, keyed = [1], [False]
    while left:
        if not left[-1]:
            left.pop()
            keyed.pop()
            continue
        left[-1] -= 1
        if keyed[-1]:
            pos = _skip_bytes(data, pos)
        kind = data[pos]
        pos += 1
        size = _FIXED_SIZE.get(kind)
        if size is not None:
            pos += size
        elif kind == _VAR_INT:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind in (_TEXT, _BYTES):
            pos = _skip_bytes(data, pos)
        elif kind in (_ARRAY, _OBJECT):
            count = data[pos]
            if count < 0x80:
                pos += 1
            else:
                count, pos = read_var_uint(data, pos)
            if len(left) > max_depth:
                raise InvalidPayload(f"a value nests deeper than {max_depth} levels")
            left.append(count)
            keyed.append(kind == _OBJECT)
        else:
            raise InvalidPayload(f"unknown value type {kind}")
    if pos > len(data):
        raise IndexError(pos)
    return pos


def _skip_uints(data: bytes, pos: int, count: int) -> int:
    for _ in range(count):
        pos = read_var_uint(data, pos)[1]
    return pos


def _skip_bytes(data: bytes, pos: int) -> int:
    """Past a length-prefixed string or byte string."""
    length = data[pos]
    if length < 0x80:  # the common case, a length under 128, read inline
        pos += 1
    else:
        length, pos = read_var_uint(data, pos)
    if pos + length > len(data):
        raise IndexError(pos + length)
    return pos + length
