"""A document's operations done on what the store holds, with no actor: its export,
the DeleteDocument that deletes or replaces it, the ReplaceSnapshot that compacts
it. The same pieces the Document actor uses (actors/document.py, actors/ydoc.py),
over a StoredDocument instead of a live Doc. Pure: the caller loads and writes.
"""

from __future__ import annotations

from collab.actors.incarnations import Retired
from collab.actors.ydoc import (
    compacted_snapshot,
    doc_from_storage,
    writers_from_storage,
)
from collab.storage.base import DeleteDocument, ReplaceSnapshot, StoredDocument


def exists(stored: StoredDocument) -> bool:
    """Whether the document holds anything in its incarnation: never written and
    deleted (not written since) alike hold nothing, as for the actor (`seq` 0)."""
    return stored.last_seq > 0


def export(stored: StoredDocument) -> bytes:
    """The document's full state as one Yjs v1 update: the bytes its actor, loaded
    from `stored`, exports (`GET /api/docs/<doc>`), embedded objects as their
    writers encoded them."""
    doc = doc_from_storage(stored)
    return writers_from_storage(stored).restore(doc.get_update())


def ending(name: str, stored: StoredDocument, content: bytes | None) -> DeleteDocument:
    """The write that ends the incarnation `stored` is in: the document is deleted,
    or replaced by `content` (checked with ydoc.importable). What it held joins the
    retired state vector, so that nothing of it can be written back."""
    current = doc_from_storage(stored).get_state()
    return DeleteDocument(name, stored.epoch, Retired(stored.retired).merged(current), content)


def compaction(name: str, stored: StoredDocument) -> ReplaceSnapshot | None:
    """The write that folds `stored`'s log into its snapshot, as the actor's
    compaction does when it unloads (the doc built from the same rows), or None
    when there is no log row to fold."""
    if not stored.updates:
        return None
    doc = doc_from_storage(stored)
    rows = [data for _, data in stored.updates]
    snapshot = compacted_snapshot(doc.get_update(), doc.get_state(), stored.snapshot, rows,
                                  writers_from_storage(stored))
    return ReplaceSnapshot(name, stored.last_seq, snapshot, stored.epoch)
