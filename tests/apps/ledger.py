"""An actor with rows in every table the store keeps for actors (state, a timer, a
queue whose messages all become dead letters, a workflow run asleep for an hour),
for the inspection tests: served with `--app tests.apps.ledger:registry`."""

from __future__ import annotations

import collab

#: Seconds until the timer and the workflow's sleep: longer than any test.
AN_HOUR = 3600.0


class Ledger(collab.Actor):
    queue_max_attempts = 1  # the first failure makes a dead letter

    def initial_state(self) -> dict:
        return {"entries": [], "raw": b"\x00\xff"}

    @collab.action
    async def record(self, amount: int) -> str:
        self.state["entries"].append(amount)
        return await self.schedule.after(AN_HOUR, "audit", "hourly")

    def audit(self, note: str) -> None:
        self.state["audited"] = note

    @collab.consumes("jobs")
    def settle_job(self, message: dict) -> None:
        raise RuntimeError(f"cannot settle job {message['n']}")

    @collab.workflow
    async def settle(self, ctx, account: str) -> int:
        total = await ctx.step("sum", lambda: 42)
        await ctx.sleep("overnight", AN_HOUR)
        return total


registry = collab.Registry(Ledger)
