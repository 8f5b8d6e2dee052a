"""collab: a real-time collaboration server where every document is an actor.

Documents speak the y-websocket protocol at `/yjs/<doc>`, live in memory as pycrdt
docs, and are persisted to an update log that is compacted into snapshots.
"""

__version__ = "0.1.0"
