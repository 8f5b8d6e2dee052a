"""What the commands that work on the store directly share (`collab actors`,
`collab docs`): their exit statuses, how they refuse, and opening the store at
DATABASE_URL, whether a server runs on it or not."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from collab.config import Settings
from collab.storage.base import Store

#: Exit statuses, as the other commands use them: 1 for what the store answered
#: (nothing stored, unreachable), 2 for a command line that cannot be run.
NOT_FOUND_OR_UNREACHABLE = 1
BAD_USAGE = 2


class StoreClosed(Exception):
    """The store could not be opened; the message says why (`opened`)."""


def fail(message: str, status: int) -> int:
    """Say `message` on stderr as the `collab` command does; returns `status`."""
    print(f"collab: {message}", file=sys.stderr)
    return status


def missing_sqlite_file(settings: Settings) -> str | None:
    """The path of a SQLite store that does not exist: opening it would create an
    empty database, and a mistyped path would look like a store with nothing in it."""
    if not settings.database_url.startswith("sqlite:"):
        return None
    from collab.storage.sqlite import sqlite_path

    path = sqlite_path(settings.database_url)
    return None if Path(path).exists() else path


def no_store(settings: Settings) -> int | None:
    """The exit status for a store that is not there (a SQLite file that does not
    exist, said on stderr), or None to go on and open it."""
    missing = missing_sqlite_file(settings)
    if missing is None:
        return None
    return fail(f"no SQLite database at {missing}: set DATABASE_URL or --database-url "
                "to the store the server uses", NOT_FOUND_OR_UNREACHABLE)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Store]:
    """The store at `settings.database_url`, open (its schema brought up to date),
    closed on exit. Raises StoreClosed if it cannot be opened: unreachable, or a
    SQLite file locked past the busy timeout."""
    from collab.storage import open_store

    store = open_store(settings)
    try:
        await store.open()
    except (ConnectionError, sqlite3.Error) as exc:
        raise StoreClosed(f"cannot open the store: {exc}") from None
    try:
        yield store
    finally:
        await store.close()
