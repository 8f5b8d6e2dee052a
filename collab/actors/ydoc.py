"""Pure pycrdt helpers for the Document actor: build a doc from storage, compute a
compacted snapshot, and render named shared types as JSON. No I/O, no asyncio.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable
from typing import Any

from pycrdt import (
    Array,
    Doc,
    Map,
    Text,
    XmlElement,
    XmlFragment,
    XmlText,
    get_update,
    merge_updates,
)

from collab.errors import DocumentTooLarge, InvalidPayload
from collab.protocol.yupdate import Layout, check_value_depth
from collab.protocol.yvalues import WriterBytes, same_structure, same_update
from collab.protocol.ywire import decode_state_vector
from collab.storage.base import StoredDocument

#: The empty Yjs v1 update: no structs, no deletions.
EMPTY_UPDATE = b"\x00\x00"
#: The first byte of an update with no structs (a varUint 0 for its client blocks).
NO_STRUCTS = b"\x00"
#: Updates merged per `merge_updates` call. One call over n updates costs O(n^2)
#: in pycrdt 0.14 (8,000 small updates: 572 ms); merging in groups of 64 and then
#: merging the results is linear (21 ms), measured on the dev machine.
MERGE_FAN_IN = 64


def is_panic(exc: BaseException) -> bool:
    """True for pyo3's PanicException: pycrdt's Rust core panicked on its input (some
    corrupt updates make it). It derives from BaseException, not ValueError."""
    return type(exc).__name__ == "PanicException"


def integrate(doc: Doc, update: bytes) -> None:
    """Apply an update a client sent to `doc`, refusing what pycrdt cannot read or would
    crash on with InvalidPayload (nothing applied then)."""
    check_value_depth(update)  # yrs decodes values by recursion: deep ones crash it
    try:
        doc.apply_update(update)
    except ValueError as exc:
        raise InvalidPayload(f"update rejected: {exc}") from exc
    except BaseException as exc:
        if not is_panic(exc):
            raise
        # The document is as it was: yrs checks an update before it integrates it.
        raise InvalidPayload("update rejected: pycrdt could not integrate it") from None


def importable(name: str, update: bytes, quota: int) -> Doc:
    """Check `update` as the whole content of a new incarnation of document `name`
    (`PUT /api/docs/<doc>`, `collab docs import`): not empty, within `quota` bytes (0:
    no limit), and an update pycrdt integrates. Returns a Doc holding it; raises
    InvalidPayload or DocumentTooLarge."""
    if not update or update == EMPTY_UPDATE:
        raise InvalidPayload("empty body; send the document as a binary Yjs v1 update")
    if quota and len(update) > quota:
        raise DocumentTooLarge(f"document {name!r}: {len(update)} bytes is past its "
                               f"size quota of {quota} bytes")
    doc = Doc()
    integrate(doc, update)
    return doc


def merge_many(updates: list[bytes]) -> bytes:
    """Merge any number of Yjs v1 updates into one, in linear time."""
    if not updates:
        return EMPTY_UPDATE
    while len(updates) > 1:
        updates = [
            merge_updates(*group) if len(group) > 1 else group[0]
            for group in (updates[i:i + MERGE_FAN_IN]
                          for i in range(0, len(updates), MERGE_FAN_IN))
        ]
    return updates[0]


def merge_as_written(updates: list[bytes], writers: WriterBytes) -> bytes:
    """One update carrying all of `updates` (at least one, each noted in `writers`),
    its embedded objects as their writers encoded them: one update as it is; several
    holding objects concatenated struct by struct; others merged by pycrdt and given
    back the bytes `writers` remembers."""
    merged = writers.concatenate(updates)
    return merged if merged is not None else writers.restore(merge_many(updates))


def warm_up() -> None:
    """Create and drop one Doc: the first Doc() of a process pays about 8 ms of
    imports, which would otherwise land on the first client's load."""
    Doc().get_update()


def doc_from_storage(stored: StoredDocument) -> Doc:
    """Replay snapshot + log into a fresh Doc (one apply of the merged parts:
    for 8,000 rows 21 ms, against 38 ms applying them one by one)."""
    doc = Doc()
    parts = ([stored.snapshot] if stored.snapshot else []) + [data for _, data in stored.updates]
    if parts:
        doc.apply_update(merge_many(parts))
    return doc


def writers_from_storage(stored: StoredDocument) -> WriterBytes:
    """The writers' encodings of the embedded objects in snapshot + log (the
    snapshot holds them as their writers encoded them: see `compacted_snapshot`)."""
    writers = WriterBytes()
    if stored.snapshot:
        writers.remember(stored.snapshot, verified=True)
    for _, row in stored.updates:
        writers.remember(row)
    return writers


def compacted_snapshot(
    gc_update: bytes, doc_state: bytes, snapshot: bytes | None, rows: Iterable[bytes],
    writers: WriterBytes | None = None,
) -> bytes:
    """The snapshot that replaces `snapshot` + `rows` (see `compaction`)."""
    steps = compaction(gc_update, doc_state, snapshot, rows, writers)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def compaction(
    gc_update: bytes, doc_state: bytes, snapshot: bytes | None, rows: Iterable[bytes],
    writers: WriterBytes | None = None,
) -> Generator[None, None, bytes]:
    """The snapshot that replaces `snapshot` + `rows`, computed in steps: the
    generator yields between them (none takes more than pycrdt's merge of the
    stored parts) so that an actor can let its loop run in between, and returns
    the snapshot. Between steps the caller may note and restore updates in
    `writers`, but nothing else may compact.

    `gc_update` and `doc_state` are the in-memory doc's full update and state
    vector, taken at the moment the covered log position was fixed. The doc's
    own encoding is compact (deleted content garbage-collected) but omits what
    the doc has not integrated: structs still waiting for a missing dependency
    and deletions of items it never saw. Those are exactly the stored parts'
    difference against the doc's state vector, so the snapshot is the doc's
    encoding merged with that difference: compact, and nothing dropped.

    With `writers` (the document's), embedded objects are stored as their writers
    encoded them, and `writers` forgets those the snapshot no longer holds.
    """
    rows = list(rows)
    if not rows and not snapshot:
        return gc_update if writers is None else writers.restore(gc_update)
    # The rows first, then the snapshot once (merge_many([snapshot, *rows]) would
    # merge the snapshot, the document's whole size, twice: in its first group of
    # MERGE_FAN_IN and again in the merge of the groups).
    merged = merge_many(rows) if rows else EMPTY_UPDATE
    yield
    merged = merge_updates(snapshot, merged) if snapshot else merged
    yield
    missing = get_update(merged, doc_state)
    yield
    # With objects to restore, the live doc's encoding is walked once: for the
    # read-back, and to store it restored when the stored parts add nothing to it
    # (the usual case: nothing waits for a dependency), which also saves pycrdt a
    # merge. Without, the read-back is a byte compare, as before.
    gc_layout = writers.layout(gc_update) if writers is not None and writers.values else None
    if gc_layout is not None and _adds_nothing(missing, gc_update, gc_layout):
        compact, layout = gc_update, gc_layout
    else:
        compact, layout = merge_updates(gc_update, missing), None
    yield
    # Some corrupt updates that yrs accepts (an item whose origin is its own client's
    # later clock) integrate differently once re-encoded: the compact form would
    # change the text. The stored parts merged replay exactly as the live doc.
    back = _read_back(compact)
    yield
    if back is None or not _same_document(back, gc_update, writers, gc_layout):
        compact, layout = merged, None
    if writers is None or not writers.values:
        return compact
    yield
    if layout is None:
        layout = writers.layout(compact)
        if layout is None:
            return compact  # one it cannot walk: restore nothing, forget nothing
        yield
    restored = writers.splice(compact, layout)
    yield
    writers.forget_absent(layout, decode_state_vector(doc_state))
    return restored


def _adds_nothing(missing: bytes, gc_update: bytes, gc_layout: Layout) -> bool:
    """True if `missing` (the stored parts against the doc's state vector) has no
    structs and the very delete set `gc_update` has."""
    return missing[:1] == NO_STRUCTS and missing[1:] == gc_update[gc_layout.delete_set:]


def _read_back(compact: bytes) -> bytes | None:
    """How a doc built from `compact` encodes, or None if pycrdt refuses it."""
    doc = Doc()
    try:
        doc.apply_update(compact)
    except BaseException as exc:
        if isinstance(exc, ValueError) or is_panic(exc):
            return None
        raise
    return doc.get_update()


def _same_document(back: bytes, gc_update: bytes, writers: WriterBytes | None,
                   gc_layout: Layout | None) -> bool:
    """Whether the read-back encodes as `gc_update` (the live doc), but for the
    encoding of embedded values: pycrdt lists an object's keys in a random order in
    each Doc, so a byte compare would refuse every document holding one."""
    if writers is not None and gc_layout is not None:
        back_layout = writers.layout(back)
        return back_layout is not None and same_structure(back, back_layout, gc_update,
                                                          gc_layout)
    return same_update(back, gc_update)


SHARED_TYPES: dict[str, type] = {"text": Text, "map": Map, "array": Array, "xml": XmlFragment}
#: What a shared type's content may nest: other shared types and subdocuments.
_NESTED = (Text, Map, Array, XmlElement, XmlText, XmlFragment, Doc)
#: Levels of shared types nested in one root that the JSON view renders. Rendering
#: recurses (pycrdt's `to_py` in Python; an XML string in Rust, where a fragment
#: 100,000 elements deep, a 1.6 MB update, overflows the stack and kills the
#: process), so a deeper root is refused before it is rendered. Editors nest a
#: few dozen levels (lists in lists in a ProseMirror document).
MAX_VIEW_DEPTH = 256


class UnknownRoot(LookupError):
    """The document has no root of the name asked for."""


class WrongRootType(ValueError):
    """The root asked for holds another kind of shared type than the one asked for."""


class TooDeep(ValueError):
    """The root nests shared types deeper than MAX_VIEW_DEPTH: no JSON view of it."""


def root_names(update: bytes) -> list[str]:
    """The names of the roots of the document whose full state is `update`, sorted."""
    doc = Doc()
    doc.apply_update(update)
    return sorted(doc.keys())


def json_view(update: bytes, wanted: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Render the named roots of the document whose full state is `update`, e.g.
    {"text": ["body"], "map": ["meta"]} -> {"text": {"body": "..."}, "map": {"meta": {...}}}.

    Works on a scratch copy: reading a root with pycrdt's `Doc.get` creates it when
    it is absent and retypes it when it is untyped (every root a peer created is),
    which must never happen to a live document. Raises UnknownRoot for a name the
    document has no root of, WrongRootType for a root of another shared type, and
    TooDeep for one nested deeper than MAX_VIEW_DEPTH.
    """
    doc = Doc()
    doc.apply_update(update)
    present = set(doc.keys())
    out: dict[str, dict[str, Any]] = {}
    for kind, names in wanted.items():
        section = out.setdefault(kind, {})
        for name in names:
            if name not in present:
                raise UnknownRoot(f"the document has no root {name!r}")
            fits = root_kinds(doc, name)
            if kind not in fits:
                raise WrongRootType(f"root {name!r} is {' or '.join(sorted(fits))}, "
                                    f"not {kind}")
            section[name] = _render(doc, kind, name)
    return out


def root_kinds(doc: Doc, name: str) -> frozenset[str]:
    """The kinds of SHARED_TYPES root `name` of `doc` can be read as, judged by its
    content: a root a peer created has no type in the update, only content (map
    entries have keys; text is strings and embeds; an XML fragment holds XML nodes;
    an array holds values). An empty root reads as any. Casts `doc`'s root: call it
    on a scratch copy only."""
    entries = len(doc.get(name, type=Map))
    kinds = {"map"} if entries else set()
    if any(not isinstance(chunk, _NESTED) for chunk, _ in doc.get(name, type=Text).diff()):
        kinds.add("text")  # strings or embeds: the delta shows them, an array's values not
    else:
        # Only now through an Array: pycrdt 0.14 never returns from reading a string
        # holding a character outside the BMP (an emoji) through an Array view, and
        # the delta above showed every string there is.
        items = list(doc.get(name, type=Array))
        if items:
            kinds.add("xml" if all(isinstance(item, XmlElement | XmlText) for item in items)
                      else "array")
    return frozenset(kinds) if kinds else frozenset(SHARED_TYPES)


def _render(doc: Doc, kind: str, name: str) -> Any:
    shared = doc.get(name, type=SHARED_TYPES[kind])
    if not _nested_within(shared, MAX_VIEW_DEPTH):
        raise TooDeep(f"root {name!r} nests shared types more than {MAX_VIEW_DEPTH} "
                      "levels deep; export it with format=yjs")
    if kind in ("text", "xml"):
        return str(shared)
    try:
        return json.loads(json.dumps(shared.to_py(), default=str))
    except ValueError as exc:  # e.g. an XML node inside an array: no JSON form
        raise WrongRootType(f"root {name!r} cannot be shown as JSON: {exc}") from None


def _nested_within(root: Any, limit: int) -> bool:
    """True if shared types nest at most `limit` levels deep under `root` (itself
    one level). Walks with a stack of its own, never by recursion."""
    stack = [(root, 1)]
    while stack:
        shared, depth = stack.pop()
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in _children(shared))
    return True


def _children(shared: Any) -> list[Any]:
    """The shared types and subdocuments directly inside `shared`."""
    if isinstance(shared, Map):
        values: Any = shared.values()
    elif isinstance(shared, Text | XmlText):
        values = (chunk for chunk, _ in shared.diff())
    elif isinstance(shared, XmlFragment | XmlElement):
        values = shared.children
    elif isinstance(shared, Array):
        values = shared
    else:
        return []
    return [value for value in values if isinstance(value, _NESTED)]
