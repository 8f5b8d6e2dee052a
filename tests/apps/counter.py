"""Application actors used by the tests (served with `--app tests.apps.counter:registry`)."""

from __future__ import annotations

import asyncio

import collab


class Counter(collab.Actor):
    def initial_state(self) -> dict:
        return {"count": 0, "created": 0, "wakes": 0, "sleeps": 0}

    async def on_create(self) -> None:
        self.state["created"] += 1

    async def on_wake(self) -> None:
        self.state["wakes"] += 1

    async def on_sleep(self) -> None:
        self.state["sleeps"] += 1

    @collab.action
    def increment(self, by: int = 1) -> int:
        self.state["count"] += by
        return self.state["count"]

    @collab.action
    async def get(self) -> dict:
        return self.state

    @collab.action
    def fail_after_change(self) -> None:
        self.state["count"] += 1000
        raise collab.ActionError("refused on purpose", code="refused")

    @collab.action
    def crash(self) -> None:
        self.state["count"] += 1000
        raise ZeroDivisionError("a bug in the actor")

    @collab.action
    def type_bug(self, n: int) -> str:
        return n + "!"  # a TypeError in the actor's own code: its bug, not the caller's

    @collab.action
    def store_unserializable(self) -> None:
        self.state["bad"] = object()

    @collab.action
    async def call_myself(self) -> None:
        await self.actor(Counter, self.key).call("get")

    def not_an_action(self) -> None:
        raise AssertionError("must not be callable")


class Tally(collab.Actor):
    """Calls other actors: the total of several counters."""

    kind = "tally"

    @collab.action
    async def add_to(self, keys: list[str], by: int) -> int:
        total = 0
        for key in keys:
            total += await self.actor(Counter, key).call("increment", by)
        self.state["last_total"] = total
        return total


registry = collab.Registry(Counter, Tally)


class Reminder(collab.Actor):
    """Timers and cron: each fire is recorded in state with its timer id."""

    def initial_state(self) -> dict:
        return {"fired": []}

    async def on_wake(self) -> None:
        self.failures_left = 0  # ephemeral: a failed fire rolls back state, not this

    @collab.action
    async def remind_in(self, seconds: float, note: str) -> str:
        return await self.schedule.after(seconds, "ring", note)

    @collab.action
    async def remind_about(self, seconds: float, payload: dict) -> str:
        return await self.schedule.after(seconds, "ring", payload)

    @collab.action
    async def every_second(self, name: str) -> str:
        return await self.schedule.cron(name, "* * * * * *", "ring", name)

    @collab.action
    async def cancel(self, timer_id: str) -> bool:
        return await self.schedule.cancel(timer_id)

    @collab.action
    def timers(self) -> list:
        return self.schedule.list()

    @collab.action
    def fail_next(self, times: int) -> None:
        self.failures_left = times

    @collab.action
    def fired(self) -> list:
        return self.state["fired"]

    def ring(self, note: str) -> None:
        if self.failures_left:
            self.failures_left -= 1
            self.state["fired"].append("lost")  # rolled back with the failure
            raise RuntimeError("the bell is broken")
        self.state["fired"].append([note, self.schedule.firing.id])


registry.register(Reminder)


class Worker(collab.Actor):
    """A durable queue consumer; `fail_next` makes the next deliveries fail."""

    queue_max_length = 50
    queue_max_attempts = 3
    queue_retry_base = 0.05

    def initial_state(self) -> dict:
        return {"done": [], "attempts_seen": []}

    async def on_wake(self) -> None:
        self.failures_left = 0

    @collab.consumes("jobs")
    def job(self, message: dict) -> None:
        self.state["attempts_seen"].append(self.queues.current.attempts)
        if message.get("poison") or self.failures_left:
            self.failures_left = max(0, self.failures_left - 1)
            self.state["done"].append("rolled back")
            raise RuntimeError("cannot do this job")
        self.state["done"].append(message["n"])

    @collab.action
    def fail_next(self, times: int) -> None:
        self.failures_left = times

    @collab.action
    async def enqueue_own(self, n: int) -> int:
        return await self.enqueue("jobs", {"n": n})

    @collab.action
    def done(self) -> list:
        return self.state["done"]


registry.register(Worker)


class PatientWorker(Worker):
    """A Worker whose retries wait long enough for a test to stop the server first."""

    kind = "patient_worker"
    queue_retry_base = 0.5
    queue_max_attempts = 5


registry.register(PatientWorker)


def record_side_effect(path: str, label: str) -> str:
    """A step's "tool": appends to a file, so tests can count how often it ran."""
    with open(path, "a") as f:
        f.write(label + "\n")
    return label.upper()


class Agent(collab.Actor):
    """The AI-agent shape: memory in state, a workflow with a retried step, a durable
    sleep, and a slow step that a kill -9 can interrupt."""

    def initial_state(self) -> dict:
        return {"memory": []}

    async def on_wake(self) -> None:
        self.flaky_failures = 0

    @collab.action
    def remember(self, fact: str) -> int:
        self.state["memory"].append(fact)
        return len(self.state["memory"])

    @collab.action
    def memory(self) -> list:
        return self.state["memory"]

    @collab.action
    async def subscribe(self) -> str:
        return await self.schedule.cron("digest", "* * * * * *", "digest")  # every second

    def digest(self) -> None:
        self.state["memory"].append("digest")

    @collab.action
    async def begin(self, path: str, nap: float, slow: float) -> str:
        return await self.start_workflow("research", path, nap, slow)

    @collab.workflow
    async def research(self, ctx, path: str, nap: float, slow: float) -> str:
        first = await ctx.step("gather", record_side_effect, path, "gather")
        await ctx.step("flaky", self.flaky, path, retries=3, backoff=0.01)
        await ctx.sleep("nap", nap)
        await ctx.step("slow", self.slow_tool, path, slow)
        await ctx.call("remember", f"researched {first}")
        return f"done {first}"

    def flaky(self, path: str) -> str:
        record_side_effect(path, "flaky")
        self.flaky_failures += 1
        if self.flaky_failures < 3:
            raise ConnectionError("the tool timed out")
        return "ok"

    async def slow_tool(self, path: str, seconds: float) -> str:
        record_side_effect(path, "slow-start")
        await asyncio.sleep(seconds)
        return record_side_effect(path, "slow-end")

    @collab.workflow
    async def doomed(self, ctx) -> None:
        await ctx.step("never", self.always_fails, retries=1, backoff=0.01)

    def always_fails(self) -> None:
        raise ValueError("no")


registry.register(Agent)


class Approver(collab.Actor):
    """A workflow that waits for a message in an inbox queue."""

    inboxes = ("approvals",)

    @collab.workflow
    async def purchase(self, ctx, item: str) -> str:
        decision = await ctx.receive("decision", "approvals")
        return f"{item}: {decision['verdict']}"


registry.register(Approver)


class Lobby(collab.Actor):
    """Connections: refuses clients without a name, greets, relays, counts who came."""

    def initial_state(self) -> dict:
        return {"visits": 0, "said": []}

    async def on_before_connect(self, conn: collab.Conn) -> None:
        name = conn.params.get("name")
        if not isinstance(name, str) or not name:
            raise collab.ActionError("a name is required", code="name_required")
        if name == "banned":
            raise collab.ActionError("you are not welcome", code="banned")
        conn.state["name"] = name

    async def on_connect(self, conn: collab.Conn) -> None:
        self.state["visits"] += 1
        conn.send("welcome", {"visits": self.state["visits"]})
        self.broadcast("joined", conn.state["name"], exclude=conn)

    async def on_disconnect(self, conn: collab.Conn) -> None:
        self.broadcast("left", conn.state["name"])

    @collab.action
    def say(self, text: str) -> int:
        who = self.conn.state["name"] if self.conn is not None else "http"
        self.state["said"].append(f"{who}: {text}")
        self.broadcast("said", {"who": who, "text": text})
        return len(self.state["said"])

    @collab.action
    def whoami(self) -> dict | None:
        if self.conn is None:
            return None
        return {"id": self.conn.id, "params": self.conn.params, "state": self.conn.state}

    @collab.action
    def online(self) -> list[str]:
        return sorted(conn.state["name"] for conn in self.connections)

    @collab.action
    def unsendable(self) -> None:
        self.broadcast("oops", {1, 2})  # a set is not msgpack: the action fails, not a socket


registry.register(Lobby)


class Ticker(collab.Actor):
    """A cron that records the due time of every tick it runs: a tick run twice
    (by two processes, or twice by one) shows up as a repeated due time."""

    def initial_state(self) -> dict:
        return {"ticks": []}

    @collab.action
    async def start(self) -> str:
        return await self.schedule.cron("tick", "* * * * * *", "tick")

    @collab.action
    def ticks(self) -> list:
        return self.state["ticks"]

    def tick(self) -> None:
        self.state["ticks"].append(self.schedule.firing.due)


registry.register(Ticker)


class Lingerer(collab.Actor):
    """Takes `seconds` to go to sleep: holds a shutdown open while a test watches it."""

    @collab.action
    def linger(self, seconds: float) -> None:
        self.state["linger"] = seconds

    async def on_sleep(self) -> None:
        await asyncio.sleep(self.state.get("linger", 0))


registry.register(Lingerer)


class Journal(collab.Actor):
    """Appends each acknowledged item to its state: a test counts what survives."""

    def initial_state(self) -> dict:
        return {"items": []}

    @collab.action
    def add(self, item: int) -> int:
        self.state["items"].append(item)
        return len(self.state["items"])

    @collab.action
    def items(self) -> list:
        return self.state["items"]

    @collab.action
    def note(self, text: str) -> None:
        self.state["note"] = text


registry.register(Journal)
