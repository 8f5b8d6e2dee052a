"""The update that restores a document to a version: an ordinary Yjs edit, made by a
fresh client on top of the current state, that makes every root's content equal to
the version's. Every replica holding the current state converges by applying it, and
edits made concurrently merge with it as CRDT edits do. Pure pycrdt, no I/O.

Each root has two parts, restored one after the other: its keyed entries (what a
Y.Map holds) and its sequence (what a Y.Text, Y.Array or Y.XmlFragment holds). A root
arrives untyped, so the sequence's kind is judged by its content on each side, as
`ydoc.root_kinds` judges it (strings or embeds make text, XML nodes make XML, other
values an array), but reading no string through an Array view (see `_sequence_kind`).
When the two sides disagree (a root that held an array holds text in the
version), the current sequence is cleared through its own kind and the version's
rebuilt through its kind: the root's content is the version's, and a client reading
the root as the current kind sees that content through its own type.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from difflib import SequenceMatcher
from itertools import accumulate
from typing import Any, NamedTuple

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.actors.ydoc import EMPTY_UPDATE, is_panic
from collab.protocol.yupdate import read_delete_set, read_layout, write_delete_set
from collab.protocol.ywire import decode_state_vector

#: Levels of shared types nested in one root that a restore walks. The walk recurses
#: (about five Python frames a level between restoring and comparing), so the limit
#: keeps it well inside Python's default 1,000 frames; editors nest a few dozen
#: levels (lists in lists in a ProseMirror document).
MAX_DEPTH = 128
#: Steps (pairs of equal units looked at) difflib may take to match the part of two
#: sequences that differs; past it that part is replaced whole. difflib's worst case
#: (long runs of one repeated unit: "aaaa..." against "abab...") grows as the cube
#: of the length, 12 s for 1,000 units, so its work is counted, not estimated from
#: the lengths. 2,000,000 steps take about 0.2 s on the dev machine.
MAX_DIFF_STEPS = 2_000_000
#: Tries at a client id that neither state uses (one in practice: ids are 32-bit).
CLIENT_ID_TRIES = 8

_SHARED = (Text, Map, Array, XmlElement, XmlText, XmlFragment, Doc)
#: A map key absent on one side.
_MISSING = object()


class RestoreError(ValueError):
    """The restore cannot be computed (see the subclasses)."""


class NotAnUpdate(RestoreError):
    """`current` or `version` is not a Yjs v1 update pycrdt can apply."""


class Unrestorable(RestoreError):
    """The version holds what this restore cannot rebuild: shared types nested deeper
    than MAX_DEPTH, or a shared type where pycrdt cannot insert one (an XmlText in a
    map or an array)."""


def restoring_update(current: bytes, version: bytes) -> bytes:
    """The Yjs v1 update that, applied to the document whose full state is `current`,
    makes the content of every root equal to its content in `version` (another full
    state, usually an earlier one of the same document).

    The update is made by one client id that neither state uses; it holds only the
    structs it inserts and the deletions it makes (the b"\\x00\\x00" empty update
    when `current` already has the version's content). Edits are kept small where
    they are cheap to find (see `_opcodes`). The caller applies it like a client's
    update: store it and send it to every connected client.

    Raises NotAnUpdate for bytes that are not a Yjs update, Unrestorable for a
    version this cannot rebuild (then nothing was changed anywhere).
    """
    source = _load(version, "version")
    work = _load(current, "current", avoid=_clients(source))
    before = work.get_state()
    deleted_before = _delete_set(work.get_update(before))
    # No enclosing transaction: pycrdt then commits each edit on its own, and a commit
    # joins consecutive inserts into one item. Inside one transaction every insert
    # walks past the unjoined items before it: 10,000 array items take 4 s, not 70 ms.
    for name in sorted(set(work.keys()) | set(source.keys())):
        _restore_root(work, source, name)
    after = work.get_update(before)
    structs_end = read_layout(after).delete_set
    deleted = _new_deletions(deleted_before, read_delete_set(after, structs_end))
    if after[:structs_end] == b"\x00" and not deleted:
        return EMPTY_UPDATE
    # `after` carries the document's whole delete set; the restore's own is the part
    # that is new, which keeps a restore of a long-edited document small.
    return after[:structs_end] + write_delete_set(deleted)


# -- loading ---------------------------------------------------------------------------


def _load(update: bytes, what: str, avoid: frozenset[int] = frozenset()) -> Doc:
    """A Doc holding `update`; with `avoid`, one whose client id is in neither
    `avoid` nor the update, so that its edits cannot clash with another client's."""
    if not isinstance(update, bytes):
        raise NotAnUpdate(f"{what} is {type(update).__name__}, not the bytes of a Yjs update")
    for _ in range(CLIENT_ID_TRIES):
        # Yjs client ids are 32-bit; the fresh one is checked against both states.
        doc = Doc(client_id=secrets.randbits(32))
        try:
            doc.apply_update(update)
        except BaseException as exc:
            if isinstance(exc, ValueError) or is_panic(exc):
                raise NotAnUpdate(f"{what} is not a Yjs v1 update: {exc}") from None
            raise
        if doc.client_id not in avoid | _clients(doc):
            return doc
    raise RestoreError(f"no unused client id in {CLIENT_ID_TRIES} tries")


def _clients(doc: Doc) -> frozenset[int]:
    return frozenset(decode_state_vector(doc.get_state()))


def _delete_set(update: bytes) -> dict[int, list[tuple[int, int]]]:
    return read_delete_set(update, read_layout(update).delete_set)


def _new_deletions(before: dict[int, list[tuple[int, int]]],
                   after: dict[int, list[tuple[int, int]]]) -> dict[int, list[tuple[int, int]]]:
    """The clock ranges deleted in `after` but not in `before` ({client: [(clock,
    length)]}). Deletions only grow, but an encoder joins adjacent ranges, so one
    range of `after` may hold old and new deletions: ranges are cut, not matched."""
    new: dict[int, list[tuple[int, int]]] = {}
    for client, ranges in after.items():
        old = sorted(before.get(client, ()))
        kept: list[tuple[int, int]] = []
        first = 0  # the first old range that may overlap the ranges still to cut
        for clock, length in sorted(ranges):
            start, end = clock, clock + length
            while first < len(old) and sum(old[first]) <= start:
                first += 1
            k = first
            while k < len(old) and old[k][0] < end:
                if old[k][0] > start:
                    kept.append((start, old[k][0] - start))
                start = max(start, sum(old[k]))
                k += 1
            if start < end:
                kept.append((start, end - start))
        if kept:
            new[client] = kept
    return new


# -- roots -----------------------------------------------------------------------------

#: The shared type a root's sequence is read and edited through, by kind.
_SEQUENCE_TYPES: dict[str, type] = {"text": Text, "array": Array, "xml": XmlFragment}


def _restore_root(work: Doc, source: Doc, name: str) -> None:
    """Make root `name` of `work` hold what it holds in `source`: its keyed entries,
    then its sequence (see the module docstring for sides that disagree on its kind)."""
    _restore_map(work.get(name, type=Map), source.get(name, type=Map), 1)
    have, want = _sequence_kind(work, name), _sequence_kind(source, name)
    if have is not None and have != want:
        _clear(work.get(name, type=_SEQUENCE_TYPES[have]))
    if want is not None:
        sequence_type = _SEQUENCE_TYPES[want]
        _restore(work.get(name, type=sequence_type), source.get(name, type=sequence_type), 1)


def _sequence_kind(doc: Doc, name: str) -> str | None:
    """"text", "array" or "xml": how root `name`'s sequence reads, judged by its
    content; None if it holds none. A text holding nothing but embedded shared types
    reads as an array: the items are the same either way. Casts the root of `doc`
    (harmless: a root's type is never encoded in an update, only the content an edit
    makes)."""
    if any(not isinstance(chunk, _SHARED) for chunk, _ in doc.get(name, type=Text).diff()):
        return "text"
    # Only now through an Array: in pycrdt 0.14 reading a string holding a character
    # outside the BMP through an Array view never returns. The text's delta shows
    # every string, so none is left here.
    with doc.transaction():  # one for every item read, not one each
        items = list(doc.get(name, type=Array))
    if not items:
        return None
    return "xml" if all(isinstance(item, XmlElement | XmlText) for item in items) else "array"


def _clear(shared: Any) -> None:
    if isinstance(shared, XmlFragment):
        del shared.children[0:len(shared.children)]
    elif len(shared):
        del shared[0:len(shared)]


# -- shared types ----------------------------------------------------------------------


def _restore(target: Any, source: Any, depth: int) -> None:
    """Make `target` hold what `source` holds; both are of one kind (`_kind`)."""
    if depth > MAX_DEPTH:
        raise Unrestorable(f"the version nests shared types more than {MAX_DEPTH} levels deep")
    if isinstance(target, Map):
        _restore_map(target, source, depth)
    elif isinstance(target, Array):
        _restore_items(_ArrayItems(target), target, source, depth)
    elif isinstance(target, Text):
        _restore_text(target, source, depth)
    elif isinstance(target, XmlText):
        _restore_attributes(target, source)
        _restore_text(target, source, depth)
    elif isinstance(target, XmlElement | XmlFragment):
        if isinstance(target, XmlElement):
            _restore_attributes(target, source)
        _restore_items(_XmlChildren(target), target, source, depth)
    # A subdocument (Doc) of the same guid is restored: its content is a document of
    # its own, which a version of this one does not hold.


def _kind(value: Any) -> tuple[str, ...]:
    """What two values must share for one to be restored to the other in place
    (keeping its identity, and so edits others make inside it meanwhile): the class of
    a shared type, an XML element's tag too, a subdocument's guid. Plain values are
    never restored in place, so theirs is the value itself."""
    if isinstance(value, XmlElement):
        return ("XmlElement", value.tag or "")
    if isinstance(value, Doc):
        return ("Doc", value.guid)
    if isinstance(value, _SHARED):
        return (type(value).__name__,)
    return ("value", _canonical(value))


def _fresh(value: Any) -> Any:
    """What to insert for `value`: itself if it is a plain value, else an empty shared
    type of its kind, which pycrdt integrates in place and `_fill` then fills."""
    if isinstance(value, XmlElement):
        return XmlElement(value.tag)
    if isinstance(value, Doc):
        return Doc(guid=value.guid)
    if isinstance(value, _SHARED):
        return type(value)()
    return value


def _fill(made: Any, value: Any, depth: int) -> None:
    if isinstance(made, _SHARED) and not isinstance(made, Doc):
        _restore(made, value, depth + 1)


def _inserting(insert: Callable[[], Any], value: Any, where: str) -> Any:
    """Run `insert`; pycrdt refuses some shared types in some places (TypeError)."""
    try:
        return insert()
    except (TypeError, ValueError) as exc:
        raise Unrestorable(f"cannot insert a {type(value).__name__} into {where}: {exc}") from None


def _restore_map(target: Map, source: Map, depth: int) -> None:
    """Delete the keys the version lacks, set those that differ; a shared value of the
    same kind on both sides is restored in place."""
    have, want = _entries(target), _entries(source)
    for key in sorted(have.keys() - want.keys()):
        del target[key]
    for key in sorted(want):
        old, new = have.get(key, _MISSING), want[key]
        if old is _MISSING or _kind(old) != _kind(new):
            made = _fresh(new)
            _inserting(lambda made=made, key=key: target.__setitem__(key, made), new, "a map")
            _fill(made, new, depth)
        elif isinstance(new, _SHARED):
            _restore(old, new, depth + 1)


def _restore_attributes(target: XmlElement | XmlText, source: XmlElement | XmlText) -> None:
    have, want = dict(target.attributes), dict(source.attributes)
    for key in sorted(have.keys() - want.keys()):
        del target.attributes[key]
    for key in sorted(want):
        if key not in have or _canonical(have[key]) != _canonical(want[key]):
            target.attributes[key] = want[key]


# -- sequences of items (Array, XML children) ------------------------------------------


class _ArrayItems:
    """Deleting and inserting items of an Array."""

    def __init__(self, array: Array) -> None:
        self.array = array

    def delete(self, start: int, stop: int) -> None:
        del self.array[start:stop]

    def insert(self, index: int, values: Sequence[Any], depth: int) -> None:
        for offset, value in enumerate(values):
            made = _fresh(value)
            _inserting(lambda made=made, at=index + offset: self.array.insert(at, made),
                       value, "an array")
            _fill(made, value, depth)


class _XmlChildren:
    """Deleting and inserting the children of an XmlFragment or XmlElement."""

    def __init__(self, parent: XmlFragment | XmlElement) -> None:
        self.children = parent.children

    def delete(self, start: int, stop: int) -> None:
        del self.children[start:stop]

    def insert(self, index: int, values: Sequence[Any], depth: int) -> None:
        for offset, value in enumerate(values):
            if not isinstance(value, XmlElement | XmlText):
                raise Unrestorable(f"cannot insert a {type(value).__name__} into XML children")
            made = self.children.insert(index + offset, _fresh(value))
            _fill(made, value, depth)


def _restore_items(items: _ArrayItems | _XmlChildren, target: Any, source: Any,
                   depth: int) -> None:
    """Keep the items equal on both sides, replace the others. Within a run that
    differs, items are matched again by kind alone (`_kind`), and those matched are
    restored in place: a paragraph whose text changed stays the same element, even
    where paragraphs were inserted or deleted around it."""
    have, prints_have, kinds_have = _listed(target, depth)
    want, prints_want, kinds_want = _listed(source, depth)
    budget = _Budget()
    # Last run first: edits at an index never move what lies before it.
    for tag, i1, i2, j1, j2 in reversed(_opcodes(prints_have, prints_want, budget)):
        if tag == "equal":
            continue
        for inner, x1, x2, y1, y2 in reversed(_opcodes(kinds_have[i1:i2], kinds_want[j1:j2],
                                                        budget)):
            if inner != "equal":
                _replace(items, i1 + x1, i1 + x2, want[j1 + y1:j1 + y2], depth)
                continue
            for old, new in zip(have[i1 + x1:i1 + x2], want[j1 + y1:j1 + y2], strict=True):
                if isinstance(new, _SHARED):
                    _restore(old, new, depth + 1)


def _listed(shared: Any, depth: int) -> tuple[list[Any], list[Any], list[tuple[str, ...]]]:
    """The items of an Array or the children of an XML node, their fingerprints and
    kinds, read in one transaction: pycrdt opens one per item read otherwise, and per
    map entry (a third of the time of a restore of 1,000 maps)."""
    with shared.doc.transaction():
        values = list(shared.children if isinstance(shared, XmlElement | XmlFragment)
                      else shared)
        return values, [_fingerprint(v, depth) for v in values], [_kind(v) for v in values]


def _entries(shared: Map) -> dict[str, Any]:
    with shared.doc.transaction():
        return dict(shared.items())


def _replace(items: _ArrayItems | _XmlChildren, start: int, stop: int, values: list[Any],
             depth: int) -> None:
    if stop > start:
        items.delete(start, stop)
    if values:
        items.insert(start, values, depth)


# -- text ------------------------------------------------------------------------------


class _Units(NamedTuple):
    """A text's delta cut into units (a character, or an embed), in parallel lists:
    what is compared, its formatting, that formatting's canonical form, its length in
    pycrdt's offsets (UTF-8 bytes for a character, 1 for an embed), its value."""

    keys: list[Any]
    attrs: list[dict[str, Any]]
    styles: list[str]
    sizes: list[int]
    values: list[Any]


def _units(delta: list[tuple[Any, dict[str, Any] | None]], depth: int) -> _Units:
    units = _Units([], [], [], [], [])
    for chunk, attrs in delta:
        attrs = attrs or {}
        style = _canonical(attrs)
        if isinstance(chunk, str):
            count = len(chunk)
            units.keys.extend(chunk)
            units.sizes.extend([1] * count if chunk.isascii() else
                               [len(char.encode()) for char in chunk])
            units.values.extend(chunk)
        else:
            count = 1
            units.keys.append(("embed", _fingerprint(chunk, depth)))
            units.sizes.append(1)
            units.values.append(chunk)
        units.attrs.extend([attrs] * count)
        units.styles.extend([style] * count)
    return units


def _restore_text(target: Text | XmlText, source: Text | XmlText, depth: int) -> None:
    """Delete and insert only what differs (characters and embeds); characters
    kept whose formatting differs get `format` calls; inserts carry the version's
    formatting."""
    have, want = _units(target.diff(), depth), _units(source.diff(), depth)
    if len(target) != sum(have.sizes):
        # Values that a client writing the root as an array stored among the text:
        # they hold offsets the delta does not show, pycrdt's Text panics deleting
        # them, and its Array view loops forever over a string with a character
        # outside the BMP. No stock editor writes one root both ways.
        raise Unrestorable("the current text holds array values among its characters")
    offsets = list(accumulate(have.sizes, initial=0))
    for tag, i1, i2, j1, j2 in reversed(_text_opcodes(have.keys, want.keys)):
        if tag == "equal":
            _reformat(target, have, want, i1, i2, j1, offsets)
            continue
        if i2 > i1:
            del target[offsets[i1]:offsets[i2]]
        _insert_units(target, offsets[i1], want, j1, j2, depth)


def _reformat(target: Text | XmlText, have: _Units, want: _Units, i1: int, i2: int, j1: int,
              offsets: list[int]) -> None:
    """Give the kept units have[i1:i2] the formatting of want[j1:...], one `format`
    call per run of units whose formatting changes alike."""
    k = i1
    while k < i2:
        pair = (have.styles[k], want.styles[j1 + k - i1])
        if pair[0] == pair[1]:
            k += 1
            continue
        end = k + 1
        while end < i2 and (have.styles[end], want.styles[j1 + end - i1]) == pair:
            end += 1
        old, new = have.attrs[k], want.attrs[j1 + k - i1]
        change = {key: value for key, value in new.items()
                  if key not in old or _canonical(old[key]) != _canonical(value)}
        change.update({key: None for key in old if key not in new})  # None removes
        target.format(offsets[k], offsets[end], change)
        k = end


def _insert_units(target: Text | XmlText, at: int, want: _Units, j1: int, j2: int,
                  depth: int) -> None:
    """Insert want[j1:j2] at offset `at`: each run of characters formatted alike in
    one insert. The attributes are always given ({} for none): without them an insert
    takes the formatting of the text before it."""
    j = j1
    while j < j2:
        if isinstance(want.keys[j], str):
            end = j + 1
            while (end < j2 and isinstance(want.keys[end], str)
                   and want.styles[end] == want.styles[j]):
                end += 1
            target.insert(at, "".join(want.values[j:end]), dict(want.attrs[j]))
        else:
            value, end = want.values[j], j + 1
            made = _fresh(value)
            _inserting(lambda made=made, at=at, attrs=dict(want.attrs[j]):
                       target.insert_embed(at, made, attrs), value, "a text")
            _fill(made, value, depth)
        at += sum(want.sizes[j:end])
        j = end


# -- comparing -------------------------------------------------------------------------


class _Budget:
    """The steps difflib has left for one sequence (MAX_DIFF_STEPS to start)."""

    def __init__(self) -> None:
        self.steps = MAX_DIFF_STEPS


def _opcodes(a: list[Any], b: list[Any],
             budget: _Budget) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes turning `a` into `b`. The common head and tail are trimmed
    first (a restore usually undoes a few edits in a long text, and difflib's cost
    grows with the length it is given); the middle is matched by difflib, or replaced
    whole once `budget` runs out."""
    n, m = len(a), len(b)
    head = 0
    while head < n and head < m and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and a[n - 1 - tail] == b[m - 1 - tail]:
        tail += 1
    ops = [("equal", 0, head, 0, head)] if head else []
    middle_a, middle_b = a[head:n - tail], b[head:m - tail]
    if middle_a and middle_b:
        try:
            middle = _BudgetedMatcher(middle_a, middle_b, budget).get_opcodes()
        except _OverBudget:
            middle = [("replace", 0, len(middle_a), 0, len(middle_b))]
    elif middle_a or middle_b:
        middle = [("delete" if middle_a else "insert", 0, len(middle_a), 0, len(middle_b))]
    else:
        middle = []
    ops += [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle]
    if tail:
        ops.append(("equal", n - tail, n, m - tail, m))
    return ops


def _text_opcodes(a: list[Any], b: list[Any]) -> list[tuple[str, int, int, int, int]]:
    """Opcodes turning the units `a` into `b`: words matched first, then the
    characters of each run of words replaced. Words are fewer and more varied than
    letters, so difflib's budget goes much further: 10,000 characters with scattered
    edits match word by word where letter by letter would run out."""
    budget = _Budget()
    words_a, starts_a = _words(a)
    words_b, starts_b = _words(b)
    ops: list[tuple[str, int, int, int, int]] = []
    for tag, i1, i2, j1, j2 in _opcodes(words_a, words_b, budget):
        u1, u2, v1, v2 = starts_a[i1], starts_a[i2], starts_b[j1], starts_b[j2]
        if tag != "replace":
            ops.append((tag, u1, u2, v1, v2))
            continue
        ops += [(inner, x1 + u1, x2 + u1, y1 + v1, y2 + v1)
                for inner, x1, x2, y1, y2 in _opcodes(a[u1:u2], b[v1:v2], budget)]
    return ops


def _words(units: list[Any]) -> tuple[list[Any], list[int]]:
    """`units` cut into words, each with the characters up to the next word (its
    spaces and punctuation: alone, a space would be a third of all words, and the
    most common word costs difflib the most), each embed alone; and where each
    word starts, with the end last."""
    words: list[Any] = []
    starts = [0]
    k, n = 0, len(units)
    while k < n:
        end = k + 1
        if isinstance(units[k], str):
            while end < n and isinstance(units[end], str) and units[end].isalnum():
                end += 1
            while (end < n and isinstance(units[end], str) and not units[end].isalnum()
                   and units[end] != "\n"):
                end += 1
            words.append("".join(units[k:end]))
        else:
            words.append(units[k])
        starts.append(end)
        k = end
    return words, starts


class _OverBudget(Exception):
    pass


class _BudgetedMatcher(SequenceMatcher):
    """difflib's matcher (no junk heuristic: it would ignore every common letter of a
    text) that raises _OverBudget once its matching has used up `budget`."""

    def __init__(self, a: list[Any], b: list[Any], budget: _Budget) -> None:
        super().__init__(None, a, b, autojunk=False)
        self.budget = budget

    def find_longest_match(self, alo: int = 0, ahi: int | None = None, blo: int = 0,
                           bhi: int | None = None) -> Any:
        # The search visits each position of a[alo:ahi] and at most every place its
        # unit occurs in b: that sum bounds its steps, and is charged before it runs.
        ahi = len(self.a) if ahi is None else ahi
        occurrences = self.b2j
        self.budget.steps -= (ahi - alo) + sum(len(occurrences.get(unit, ()))
                                               for unit in self.a[alo:ahi])
        if self.budget.steps < 0:
            raise _OverBudget
        return super().find_longest_match(alo, ahi, blo, bhi)


def _canonical(value: Any) -> str:
    """One string per value: JSON with sorted keys keeps 1 and True and 1.0 apart (==
    would not). Bytes, which JSON has no form for, become a tagged hex string."""
    return json.dumps(value, sort_keys=True, default=_bytes_as_json)


def _bytes_as_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"\x00bytes": value.hex()}
    raise TypeError(f"{type(value).__name__} is not a value a Yjs document holds")


def _fingerprint(value: Any, depth: int) -> Any:
    """A hashable form of `value` equal for equal content, shared types included
    (their formatting and XML attributes too): what the diff compares items by."""
    if depth > MAX_DEPTH:
        raise Unrestorable(f"the version nests shared types more than {MAX_DEPTH} levels deep")
    depth += 1
    if isinstance(value, Map):
        return ("map", tuple(sorted((key, _fingerprint(item, depth))
                                    for key, item in value.items())))
    if isinstance(value, Array):
        return ("array", tuple(_fingerprint(item, depth) for item in value))
    if isinstance(value, Text | XmlText):
        delta = tuple((chunk if isinstance(chunk, str) else _fingerprint(chunk, depth),
                       _canonical(attrs or {})) for chunk, attrs in value.diff())
        if isinstance(value, Text):
            return ("text", delta)
        return ("xmltext", delta, _canonical(dict(value.attributes)))
    if isinstance(value, XmlElement | XmlFragment):
        children = tuple(_fingerprint(child, depth) for child in value.children)
        if isinstance(value, XmlFragment):
            return ("fragment", children)
        return ("element", value.tag, _canonical(dict(value.attributes)), children)
    if isinstance(value, Doc):
        return ("doc", value.guid)
    return ("value", _canonical(value))
