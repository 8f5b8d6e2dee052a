"""Pure pycrdt helpers for the Document actor: build a doc from storage, compute a
compacted snapshot, and render named shared types as JSON. No I/O, no asyncio.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlFragment, get_update, merge_updates

from collab.storage.base import StoredDocument

#: The empty Yjs v1 update: no structs, no deletions.
EMPTY_UPDATE = b"\x00\x00"


def doc_from_storage(stored: StoredDocument) -> Doc:
    """Replay snapshot + log into a fresh Doc (one merged apply: fastest in yrs)."""
    doc = Doc()
    parts = ([stored.snapshot] if stored.snapshot else []) + [data for _, data in stored.updates]
    if len(parts) == 1:
        doc.apply_update(parts[0])
    elif parts:
        doc.apply_update(merge_updates(*parts))
    return doc


def compacted_snapshot(
    gc_update: bytes, doc_state: bytes, snapshot: bytes | None, rows: Iterable[bytes]
) -> bytes:
    """The snapshot that replaces `snapshot` + `rows`.

    `gc_update` and `doc_state` are the in-memory doc's full update and state
    vector, taken at the moment the covered log position was fixed. The doc's
    own encoding is compact (deleted content garbage-collected) but omits what
    the doc has not integrated: structs still waiting for a missing dependency
    and deletions of items it never saw. Those are exactly the stored parts'
    difference against the doc's state vector, so the snapshot is the doc's
    encoding merged with that difference: compact, and nothing dropped.
    """
    parts = ([snapshot] if snapshot else []) + list(rows)
    if not parts:
        return gc_update
    merged = parts[0] if len(parts) == 1 else merge_updates(*parts)
    missing = get_update(merged, doc_state)
    return merge_updates(gc_update, missing)


SHARED_TYPES: dict[str, type] = {"text": Text, "map": Map, "array": Array, "xml": XmlFragment}


def json_view(doc: Doc, wanted: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Render the named roots, e.g. {"text": ["body"], "map": ["meta"]} ->
    {"text": {"body": "..."}, "map": {"meta": {...}}}.

    Raises TypeError/ValueError if a root exists with another type.
    """
    out: dict[str, dict[str, Any]] = {}
    for kind, names in wanted.items():
        cls = SHARED_TYPES[kind]
        section = out.setdefault(kind, {})
        for name in names:
            shared = doc.get(name, type=cls)
            if kind in ("text", "xml"):
                section[name] = str(shared)
            else:
                section[name] = json.loads(json.dumps(shared.to_py(), default=str))
    return out
