"""The actor lifecycle as a table: every legal transition, and an error naming any other.

    LOADING --> LIVE --> DRAINING --> STOPPED
       \\________________________________/   (load failed)
"""

from __future__ import annotations

from enum import Enum


class ActorState(Enum):
    LOADING = "loading"  # reading state from the store; messages wait in the mailbox
    LIVE = "live"  # handling messages one at a time
    DRAINING = "draining"  # saving state before hibernating or shutting down; no new work
    STOPPED = "stopped"  # unloaded; messages still queued are re-routed to a successor


TRANSITIONS: dict[ActorState, frozenset[ActorState]] = {
    ActorState.LOADING: frozenset({ActorState.LIVE, ActorState.STOPPED}),
    ActorState.LIVE: frozenset({ActorState.DRAINING}),
    ActorState.DRAINING: frozenset({ActorState.STOPPED}),
    ActorState.STOPPED: frozenset(),
}


class IllegalTransition(RuntimeError):
    def __init__(self, actor: str, current: ActorState, target: ActorState) -> None:
        super().__init__(f"{actor}: cannot go from {current.value} to {target.value}")


def check_transition(actor: str, current: ActorState, target: ActorState) -> ActorState:
    """Return `target` if the move is legal, else raise IllegalTransition."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(actor, current, target)
    return target
