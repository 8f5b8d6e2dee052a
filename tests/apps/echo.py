"""A room watcher (served with `--app tests.apps.echo:registry`): it hears every
message of the rooms named echo/* and answers `!text` with `text` in the same room,
a hook that calls back into the room it watches (runtime/notify.py)."""

from __future__ import annotations

import collab

ECHO_USER = "echo"


class Echo(collab.Actor):
    @collab.watch_room("echo/*")
    async def heard(self, note: dict) -> None:
        message = note["message"]
        self.state.setdefault("heard", []).append(
            [note["room"], message["seq"], message["user"], message["body"]])
        if message["body"].startswith("!") and message["user"] != ECHO_USER:
            await self.actor("room", note["room"]).call(
                "send", f"echo-{message['seq']}", message["body"][1:], user=ECHO_USER)

    @collab.action
    def heard_so_far(self) -> list:
        return self.state.get("heard", [])


registry = collab.Registry(Echo)
