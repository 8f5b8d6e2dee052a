"""Versioned schema: the ordered migrations every SQL back end applies.

Each entry upgrades the schema by one version. Never edit a released entry;
append a new one. Statements are written in SQLite's dialect using only SQL that
Postgres shares, except for the type names `for_postgres` translates.
"""

from __future__ import annotations

import re

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
    (3, [
        # Durable timers and cron entries of application actors. `due` is a Unix
        # time in seconds; a cron entry is rescheduled after each fire.
        """CREATE TABLE actor_timers (
               kind TEXT NOT NULL,
               key TEXT NOT NULL,
               id TEXT NOT NULL,
               due DOUBLE PRECISION NOT NULL,
               method TEXT NOT NULL,
               args BLOB NOT NULL,
               cron TEXT,
               tz TEXT,
               attempts INTEGER NOT NULL DEFAULT 0,
               PRIMARY KEY (kind, key, id))""",
        "CREATE INDEX actor_timers_due ON actor_timers (due)",
    ]),
    (4, [
        # Durable queues of application actors: consumed in seq order; a message
        # leaves the table when its handler succeeds; `dead` rows are dead letters.
        """CREATE TABLE actor_queue (
               kind TEXT NOT NULL,
               key TEXT NOT NULL,
               queue TEXT NOT NULL,
               seq BIGINT NOT NULL,
               body BLOB NOT NULL,
               attempts INTEGER NOT NULL DEFAULT 0,
               dead INTEGER NOT NULL DEFAULT 0,
               error TEXT,
               enqueued_at DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (kind, key, queue, seq))""",
    ]),
    (5, [
        # Workflows of application actors: completed steps' results are recorded
        # so a resumed run returns them instead of running the steps again.
        """CREATE TABLE actor_workflows (
               kind TEXT NOT NULL,
               key TEXT NOT NULL,
               id TEXT NOT NULL,
               name TEXT NOT NULL,
               args BLOB NOT NULL,
               status TEXT NOT NULL,
               steps BLOB NOT NULL,
               result BLOB,
               error TEXT,
               created_at DOUBLE PRECISION NOT NULL,
               updated_at DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (kind, key, id))""",
    ]),
    (6, [
        # Chat messages of rooms, one row each at the room-assigned seq. A deleted
        # message stays as a tombstone (deleted = 1, body '') so paging is stable.
        # meta and reactions are msgpack (reactions: emoji -> list of user ids).
        """CREATE TABLE room_messages (
               room TEXT NOT NULL,
               seq BIGINT NOT NULL,
               client_id TEXT NOT NULL,
               user_id TEXT NOT NULL,
               body TEXT NOT NULL,
               meta BLOB,
               created_at DOUBLE PRECISION NOT NULL,
               edited_at DOUBLE PRECISION,
               deleted INTEGER NOT NULL DEFAULT 0,
               reactions BLOB NOT NULL,
               PRIMARY KEY (room, seq))""",
        # The sender's idempotency key: a retried send finds the original row.
        "CREATE UNIQUE INDEX room_messages_client_id ON room_messages (room, client_id)",
    ]),
    (7, [
        # The newest lease token each actor's writes carried: writes from an owner
        # with an older token are refused (fencing; only with several processes).
        """CREATE TABLE actor_fences (
               kind TEXT NOT NULL,
               key TEXT NOT NULL,
               token BIGINT NOT NULL,
               PRIMARY KEY (kind, key))""",
    ]),
    (8, [
        # Users cut off by an administrator: their tokens issued (iat) at or before
        # revoked_at (Unix time) are refused, by every process and after restarts.
        # user_id, not user: USER is a reserved word in Postgres.
        """CREATE TABLE revocations (
               user_id TEXT PRIMARY KEY,
               revoked_at DOUBLE PRECISION NOT NULL)""",
    ]),
    (9, [
        # An administrator's ceiling over a user's permissions: JSON
        # {kind: {pattern: "none" | "r" | "rw"}}, `{}` for none; set_at orders
        # concurrent changes (the latest wins, in every process).
        """CREATE TABLE user_limits (
               user_id TEXT PRIMARY KEY,
               limits TEXT NOT NULL,
               set_at DOUBLE PRECISION NOT NULL)""",
    ]),
    (10, [
        # One row per document name ever written: what it takes in the store and when
        # it last changed (for listing), and its incarnation. Deleting a document
        # keeps the row: `epoch` counts incarnations (writes carry the epoch they
        # belong to, and a write of an earlier one is refused), `retired` is the Yjs
        # state vector of every earlier incarnation's content (updates that carry or
        # build on it are refused: nothing deleted comes back), `deleted_at` is set
        # until the name is written again.
        """CREATE TABLE documents (
               doc TEXT PRIMARY KEY,
               epoch BIGINT NOT NULL,
               bytes BIGINT NOT NULL,
               created_at DOUBLE PRECISION NOT NULL,
               updated_at DOUBLE PRECISION NOT NULL,
               deleted_at DOUBLE PRECISION,
               retired BLOB)""",
        # Documents stored before this version: epoch 1, their size now; the log rows
        # carry no time, so a document with no snapshot gets 0 until it is written.
        """INSERT INTO documents (doc, epoch, bytes, created_at, updated_at)
           SELECT doc, 1, SUM(size), COALESCE(MAX(at), 0), COALESCE(MAX(at), 0)
             FROM (SELECT doc, length(data) AS size, updated_at AS at FROM doc_snapshots
                   UNION ALL
                   SELECT doc, length(data) AS size, NULL AS at FROM doc_updates) AS stored
            GROUP BY doc""",
    ]),
    (11, [
        # Versions of documents: a full state each (a Yjs v1 update), named by a user
        # or made automatically (kind 'named', 'auto', or 'restore': the state a
        # restore replaced). `id` grows per document; deleting the document deletes them.
        """CREATE TABLE doc_versions (
               doc TEXT NOT NULL,
               id BIGINT NOT NULL,
               kind TEXT NOT NULL,
               name TEXT,
               author TEXT,
               created_at DOUBLE PRECISION NOT NULL,
               epoch BIGINT NOT NULL,
               bytes BIGINT NOT NULL,
               data BLOB NOT NULL,
               PRIMARY KEY (doc, id))""",
    ]),
]

LATEST_VERSION = MIGRATIONS[-1][0]

#: Record a write's lease token for its actor, keeping the largest seen; the
#: caller then compares the stored token with its own (same SQL on both back
#: ends, with each driver's placeholders).
FENCE_SQL = ("INSERT INTO actor_fences (kind, key, token) VALUES (?, ?, ?) "
             "ON CONFLICT (kind, key) DO UPDATE SET token = excluded.token "
             "WHERE excluded.token > actor_fences.token")

#: Record a user's revocation, keeping the latest time when there is one already
#: (same SQL on both back ends, with each driver's placeholders).
REVOKE_SQL = ("INSERT INTO revocations (user_id, revoked_at) VALUES (?, ?) "
              "ON CONFLICT (user_id) DO UPDATE SET revoked_at = excluded.revoked_at "
              "WHERE excluded.revoked_at > revocations.revoked_at")

#: Record a user's limits, unless a later change is stored already.
LIMIT_SQL = ("INSERT INTO user_limits (user_id, limits, set_at) VALUES (?, ?, ?) "
             "ON CONFLICT (user_id) DO UPDATE SET limits = excluded.limits, "
             "set_at = excluded.set_at WHERE excluded.set_at > user_limits.set_at")

#: SQLite type names Postgres lacks, and its name for each. The migrations keep
#: SQLite's names: they are released, and in SQLite a column's type name decides
#: its affinity (BYTEA there would mean NUMERIC).
_POSTGRES_TYPES = {"BLOB": "BYTEA"}
_TYPE_NAME = re.compile(r"\b(" + "|".join(_POSTGRES_TYPES) + r")\b")


def for_postgres(statement: str) -> str:
    """`statement` (one entry of MIGRATIONS) with its type names in Postgres' dialect."""
    return _TYPE_NAME.sub(lambda match: _POSTGRES_TYPES[match.group(1)], statement)
