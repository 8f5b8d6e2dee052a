"""Application actors for the client-js tests: `collab serve --app app:registry`
with this directory on PYTHONPATH (test/server.js does that)."""

from __future__ import annotations

import asyncio

import collab


class Tally(collab.Actor):
    """A counter that tells its connections about every change."""

    def initial_state(self) -> dict:
        return {"count": 0, "jobs": []}

    async def on_before_connect(self, conn: collab.Conn) -> None:
        name = conn.params.get("name")
        if not isinstance(name, str) or not name:
            raise collab.ActionError("a name is required", code="name_required")
        conn.state["name"] = name

    async def on_connect(self, conn: collab.Conn) -> None:
        conn.send("welcome", {"name": conn.state["name"]})

    @collab.action
    def add(self, by: int = 1, *, note: str = "") -> dict:
        self.state["count"] += by
        who = self.conn.state["name"] if self.conn is not None else None
        self.broadcast("changed", {"count": self.state["count"], "by": who, "note": note})
        return {"count": self.state["count"], "by": who}

    @collab.action
    def count(self) -> int:
        return self.state["count"]

    @collab.action
    def refuse(self) -> None:
        raise collab.ActionError("refused on purpose", code="refused")

    @collab.action
    async def slow(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @collab.consumes("jobs")
    def job(self, message: dict) -> None:
        self.state["jobs"].append(message)
        self.broadcast("job", message)

    @collab.action
    def jobs(self) -> list:
        return self.state["jobs"]


class OrderBook(Tally):
    """A Tally under a hyphenated type name, which the server allows (KIND_PATTERN)."""

    kind = "order-book"


registry = collab.Registry(Tally, OrderBook)
