"""How the agent appears and talks: its chat user and editor look, the commands it
hears, and what it says about them. Shared by the actor (agent.py) and the bot in
another process (bot.py)."""

from __future__ import annotations

import re

from examples.agent.models import COMMANDS
from examples.agent.writing import TITLES

#: The chat user the agent posts as, and how editors show its caret.
AGENT_USER = "agent"
AGENT_LOOK = {"name": "Agent", "color": "#7c3aed", "colorLight": "#7c3aed33"}
_COMMAND = re.compile(r"^/(\w+)\b")


def command_of(body: str) -> str | None:
    """The command a chat message asks for (`/summarize`, `/todo`), if any."""
    match = _COMMAND.match(body.strip())
    return match.group(1) if match and match.group(1) in COMMANDS else None


def on_it(command: str, user: str) -> str:
    return f"On it: /{command} for {user}."


def done(command: str, user: str) -> str:
    return f"{TITLES[command]} is in the document, {user}."
