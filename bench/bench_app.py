"""The actor the native-protocol bench calls (served with `--app bench_app:registry`)."""

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
