"""Versioned schema: the ordered migrations every SQL back end applies.

Each entry upgrades the schema by one version. Never edit a released entry;
append a new one. Statements use only SQL that SQLite and Postgres share.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        # One row per accepted Yjs update; seq is assigned by the document's actor.
        """CREATE TABLE doc_updates (
               doc TEXT NOT NULL,
               seq BIGINT NOT NULL,
               data BLOB NOT NULL,
               PRIMARY KEY (doc, seq))""",
        # The compacted state: covers every doc_updates row with seq <= this seq.
        """CREATE TABLE doc_snapshots (
               doc TEXT PRIMARY KEY,
               seq BIGINT NOT NULL,
               data BLOB NOT NULL,
               updated_at DOUBLE PRECISION NOT NULL)""",
    ]),
    (2, [
        # The durable state of an application actor, msgpack-encoded.
        """CREATE TABLE actor_state (
               kind TEXT NOT NULL,
               key TEXT NOT NULL,
               state BLOB NOT NULL,
               updated_at DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (kind, key))""",
    ]),
]

LATEST_VERSION = MIGRATIONS[-1][0]
