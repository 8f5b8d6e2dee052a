"""The actor the native-protocol bench calls (served with `--app bench_app:registry`)."""

import time

import collab


class Counter(collab.Actor):
    def initial_state(self) -> dict:
        return {"count": 0}

    @collab.action
    def increment(self) -> int:
        self.state["count"] += 1
        return self.state["count"]


registry = collab.Registry(Counter)


class BenchRoom(collab.Room):
    """The built-in room with its per-connection rate limit lifted, to measure the room."""

    kind = "bench_room"
    RATE_PER_SECOND = 1e9
    RATE_BURST = 10**9


registry.register(BenchRoom)


class Listener(collab.Actor):
    """Hears every message of the bench rooms named watched/* (runtime/watches.py) and
    notes when, in memory only: the watch bench reads the delays back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heard_at: dict[int, float] = {}

    @collab.watch_room("watched/*")
    def heard(self, note: dict) -> None:
        self.heard_at.setdefault(note["message"]["seq"], time.time())

    @collab.action
    def heard_times(self) -> dict:
        return {str(seq): at for seq, at in self.heard_at.items()}


registry.register(Listener)
