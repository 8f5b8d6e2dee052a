"""An agent that co-edits documents with people: `collab serve --app examples.agent:registry`
(examples/agent/README.md)."""

from examples.agent.agent import Agent, registry

__all__ = ["Agent", "registry"]
