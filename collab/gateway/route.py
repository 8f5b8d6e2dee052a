"""One socket's way to one actor: the live instance here, or the relay to the
process that owns it, found again whenever the one it used stops taking messages
(a failed load that turned into a relay, a relay whose owner went away)."""

from __future__ import annotations

from typing import Any

from collab.runtime.system import ActorSystem
from collab.runtime.wire import travel_of


class Route:
    __slots__ = ("cls", "key", "system", "target")

    def __init__(self, system: ActorSystem, cls: type, key: str) -> None:
        self.system = system
        self.cls = cls
        self.key = key
        self.target: Any = None

    def post(self, message: Any) -> None:
        target = self.target
        if target is not None and target.post(message):
            return
        travel = travel_of(message)
        if travel is not None and travel.closes:
            # Leaving: only an instance or relay that is there now can care; never
            # wake an actor just to say goodbye to it.
            self.target = self.system.present(self.cls, self.key)
            if self.target is not None:
                self.target.post(message)
            return
        self.target = self.system.post(self.cls, self.key, message)
