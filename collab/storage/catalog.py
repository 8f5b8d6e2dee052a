"""The documents catalog (table `documents`, schema version 10): the SQL both back
ends run to keep it, and the rows they pass that SQL.

A document's catalog row says how many bytes it takes in the store and when it was
created and last written, so documents can be listed without reading them, and
which incarnation it is in (`epoch`): deleting a document ends its incarnation,
and every document write names the incarnation it belongs to, so a write of an
earlier one is refused (storage.base.DocumentReplaced). The statements are in
SQLite's placeholders; the Postgres store numbers them.
"""

from __future__ import annotations

from collections.abc import Sequence

from collab.storage.base import (
    AppendUpdate,
    DeleteDocument,
    PutVersion,
    StoredDocument,
    WriteOp,
)

#: An append batch's bytes for one document: (doc, epoch, bytes, created_at, updated_at).
#: A name written again after its deletion starts a new life: created now, listed again.
#: (A log row written twice after a late-reported failure counts twice until the next
#: compaction recounts the document.)
APPEND_SQL = (
    "INSERT INTO documents (doc, epoch, bytes, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (doc) DO UPDATE SET bytes = documents.bytes + excluded.bytes, "
    "updated_at = excluded.updated_at, deleted_at = NULL, "
    "created_at = CASE WHEN documents.deleted_at IS NULL THEN documents.created_at "
    "ELSE excluded.created_at END")

#: After a compaction: the document's size counted again from what is stored (doc x3).
RESIZE_SQL = (
    "UPDATE documents SET bytes = "
    "COALESCE((SELECT length(data) FROM doc_snapshots WHERE doc = ?), 0) + "
    "COALESCE((SELECT SUM(length(data)) FROM doc_updates WHERE doc = ?), 0) WHERE doc = ?")

#: A deletion or replacement: (doc, new epoch, bytes, created_at, updated_at,
#: deleted_at, retired).
DELETE_SQL = (
    "INSERT INTO documents (doc, epoch, bytes, created_at, updated_at, deleted_at, retired) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (doc) DO UPDATE SET epoch = excluded.epoch, "
    "bytes = excluded.bytes, created_at = excluded.created_at, "
    "updated_at = excluded.updated_at, deleted_at = excluded.deleted_at, "
    "retired = excluded.retired")

#: One page of the listing: (after, len(prefix), prefix, limit). Ordered by name in
#: the database's collation, which the cursor (`after`) follows too.
LIST_SQL = (
    "SELECT doc, bytes, created_at, updated_at, epoch FROM documents "
    "WHERE doc > ? AND substr(doc, 1, ?) = ? AND deleted_at IS NULL ORDER BY doc LIMIT ?")

#: The incarnation the store holds for one document (doc).
EPOCH_SQL = "SELECT epoch FROM documents WHERE doc = ?"

#: A document's stored size, for choosing how to load it (doc).
SIZE_SQL = "SELECT bytes FROM documents WHERE doc = ?"

#: Versions: store one (doc, id, kind, name, author, created_at, epoch, bytes, data),
#: delete one (doc, id), delete all of a deleted document's (doc), list (doc), read (doc, id).
PUT_VERSION_SQL = (
    "INSERT INTO doc_versions (doc, id, kind, name, author, created_at, epoch, bytes, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (doc, id) DO NOTHING")
DELETE_VERSION_SQL = "DELETE FROM doc_versions WHERE doc = ? AND id = ?"
DELETE_VERSIONS_SQL = "DELETE FROM doc_versions WHERE doc = ?"
LIST_VERSIONS_SQL = ("SELECT doc, id, kind, name, author, created_at, epoch, bytes "
                     "FROM doc_versions WHERE doc = ? ORDER BY id")
LOAD_VERSION_SQL = "SELECT data FROM doc_versions WHERE doc = ? AND id = ?"


def version_row(op: PutVersion) -> tuple:
    info = op.info
    return (info.doc, info.id, info.kind, info.name, info.author, info.created_at, info.epoch,
            info.bytes, op.data)


def list_params(prefix: str, after: str | None, limit: int) -> tuple[str, int, str, int]:
    return after or "", len(prefix), prefix, limit


def appended_bytes(ops: Sequence[WriteOp], epochs: dict[str, tuple[int, int]],
                   now: float) -> list[tuple[str, int, int, float, float]]:
    """APPEND_SQL's rows for the AppendUpdate ops of one batch, one per document."""
    sizes: dict[str, int] = {}
    for op in ops:
        if isinstance(op, AppendUpdate):
            sizes[op.doc] = sizes.get(op.doc, 0) + len(op.data)
    return [(doc, epochs[doc][0], size, now, now) for doc, size in sizes.items()]


def deletion_row(op: DeleteDocument, now: float) -> tuple:
    """DELETE_SQL's row for `op`."""
    size = len(op.content) if op.content is not None else 0
    return (op.doc, op.epoch + 1, size, now, now, None if op.content is not None else now,
            op.retired)


def stored_document(rows: list[tuple]) -> StoredDocument:
    """A document from the rows of one load: (0, seq, snapshot), (1, seq, update)...,
    (2, epoch, retired), in that order, any of them missing."""
    snapshot, snapshot_seq, updates, epoch, retired = None, 0, [], 1, None
    for part, number, data in rows:
        if part == 1:
            updates.append((number, bytes(data)))
        elif part == 0:
            snapshot, snapshot_seq = bytes(data), number
        else:
            epoch, retired = number, None if data is None else bytes(data)
    return StoredDocument(snapshot, snapshot_seq, updates, epoch, retired)
