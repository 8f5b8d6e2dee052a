"""Persistence: one Store interface, chosen by DATABASE_URL, plus group commit."""

from __future__ import annotations

from collab.config import Settings
from collab.storage.base import Store


def open_store(settings: Settings) -> Store:
    """Pick the back end for `settings.database_url` (not yet opened)."""
    url = settings.database_url
    if url.startswith("sqlite:"):
        from collab.storage.sqlite import SQLiteStore

        return SQLiteStore(url, synchronous=settings.sqlite_synchronous)
    if url.startswith(("postgres:", "postgresql:")):
        from collab.storage.postgres import PostgresStore

        return PostgresStore(url, pool_size=settings.database_pool_size)
    raise ValueError(f"unsupported DATABASE_URL {url.split(':', 1)[0]}:... "
                     "(supported: sqlite:///path.db, postgres://user:password@host/database)")
