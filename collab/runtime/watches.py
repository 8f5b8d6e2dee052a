"""Change hooks: `@collab.watch("notes/*")` on an actor method makes it hear about
changes to the documents whose names match, debounced per document and delivered
durably.

    class Indexer(collab.Actor):
        @collab.watch("notes/*", quiet=2.0, at_most=30.0)
        async def changed(self, change: dict) -> None:
            # {"doc": "notes/1", "seq": 812, "update": bytes or None}
            copy = await self.document(change["doc"]).read()

A watch is a durable queue of the watching actor (`watch:<method>`, consumed by
the method), so a change is delivered at least once, also when the watcher was
down or hibernating: a document whose name matches keeps a durable timer, written
in the same commit as its changes, that fires `quiet` seconds after the last
change (at most `at_most` after the first) and enqueues one message per watcher.
`update` holds everything that changed since the last notification when it fits
in a queue message (else None: read the document). The watching instance is
`key`, or the document's name when `key` is None (one instance per document).

`@collab.watch_room("support/*")` does the same for chat rooms: the method gets
`{"room": "support/1", "message": {...}}` for each new message, in order, once it
is committed (runtime/notify.py tells the watchers without holding up the room).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from collab.runtime.actions import marked_methods

F = TypeVar("F", bound=Callable[..., Any])

#: The queue a watching method consumes is this prefix and its name.
QUEUE_PREFIX = "watch:"


#: What a watch is of: documents' changes, or rooms' messages.
DOCUMENTS = "doc"
ROOMS = "room"


@dataclass(frozen=True, slots=True)
class Watch:
    pattern: str
    kind: str  # the watching actor type
    queue: str
    quiet: float
    at_most: float
    key: str | None
    of: str = DOCUMENTS

    def matches(self, doc: str) -> bool:
        return fnmatch.fnmatchcase(doc, self.pattern)


def watch(pattern: str, *, quiet: float = 2.0, at_most: float = 30.0,
          key: str | None = None) -> Callable[[F], F]:
    """Mark `method(self, change)` to hear about changes to the documents whose names
    match `pattern` (fnmatch: `*`, `?`, `[...]`), after `quiet` seconds without one
    and at most `at_most` seconds after the first."""
    if not 0 < quiet <= at_most:
        raise ValueError("a watch needs 0 < quiet <= at_most")
    return _marker((pattern, quiet, at_most, key, DOCUMENTS))


def watch_room(pattern: str, *, key: str | None = None) -> Callable[[F], F]:
    """Mark `method(self, note)` to hear of every new message in the chat rooms whose
    names match `pattern`, one `{"room", "message"}` note per message, in order."""
    return _marker((pattern, 0.0, 0.0, key, ROOMS))


def _marker(watch: tuple[str, float, float, str | None, str]) -> Callable[[F], F]:
    def mark(method: F) -> F:
        method.__collab_consumes__ = QUEUE_PREFIX + method.__name__  # type: ignore[attr-defined]
        method.__collab_watch__ = watch  # type: ignore[attr-defined]
        return method

    return mark


def watches_of(cls: Any) -> list[Watch]:
    """The watches actor type `cls` declares."""
    return [Watch(pattern, cls.kind, QUEUE_PREFIX + name, quiet, at_most, key, of)
            for name, _, (pattern, quiet, at_most, key, of)
            in marked_methods(cls, "__collab_watch__")]
