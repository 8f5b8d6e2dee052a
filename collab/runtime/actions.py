"""Actions: the RPC methods an actor class declares with `@action`, and how a call
is bound to one. Pure bookkeeping: no I/O, no mailbox.

A call names an action and carries positional and keyword arguments that came
off the wire (JSON or msgpack), so arguments are bound against the method's
signature before it runs: a bad call is the caller's error, never a crash.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from collab.errors import CollabError
from collab.runtime.wire import travels

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds an actor-to-actor or HTTP call waits for its reply. A cycle of calls
#: (A awaits B while B awaits A) cannot finish, since each actor handles one
#: message at a time; the timeout turns that deadlock into an error.
DEFAULT_CALL_TIMEOUT = 30.0


def action(method: F) -> F:
    """Mark an actor method as an action callable by clients and other actors.

    The method may be sync or async; its arguments and result must be
    msgpack/JSON serializable. Raise `ActionError` to return an error the
    caller may show; any other exception is reported as an internal error.
    """
    method.__collab_action__ = True  # type: ignore[attr-defined]
    return method


def marked_methods(cls: type, marker: str) -> list[tuple[str, Callable[..., Any], Any]]:
    """(name, method, marker value) for every method of `cls` and its bases that a
    decorator marked with `marker`; a subclass's definition replaces its base's."""
    found: dict[str, tuple[Callable[..., Any], Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            value = getattr(member, marker, None)
            if value is not None:
                found[name] = (member, value)
            else:
                found.pop(name, None)  # overridden without the decorator
    return [(name, member, value) for name, (member, value) in found.items()]


def actions_of(cls: type) -> dict[str, Callable[..., Any]]:
    """Every `@action` method of `cls` and its bases, by name."""
    return {name: member for name, member, _ in marked_methods(cls, "__collab_action__")}


class ActionError(CollabError):
    """Raised by an action to refuse a call with a stable `code` the caller sees.

    State changes made by the failing call are rolled back.
    """

    code = "action_error"


class UnknownAction(ActionError):
    code = "unknown_action"


class InvalidArguments(ActionError):
    code = "invalid_arguments"


class CallTimeout(ActionError):
    code = "call_timeout"

    @classmethod
    def after(cls, kind: str, key: str, what: str, timeout: float) -> CallTimeout:
        return cls(f"{kind}:{key} did not answer {what} within {timeout} s")


@travels("call")
@dataclass(frozen=True, slots=True)
class CallAction:
    """Run action `name` with these arguments; the result (or error) goes to `reply`."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reply: asyncio.Future[Any] = field(repr=False)
    #: The socket that sent the call, if it came over the native protocol and is
    #: connected to the actor.
    outlet: Any = field(default=None, repr=False)
    #: Who to meter the call against, set by the gateway: the socket that sent it
    #: ("ws:<id>"), or for HTTP the token's user ("user:<sub>") or the client's
    #: address ("addr:<ip>"). None: a call from another actor in this process, trusted.
    caller: str | None = None


@functools.cache
def _signature(method: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(method)


def bind(method: Callable[..., Any], instance: Any, name: str, args: tuple, kwargs: dict):
    """Check a call's arguments against `method`; raises InvalidArguments naming the problem."""
    try:
        _signature(method).bind(instance, *args, **kwargs)
    except TypeError as exc:
        raise InvalidArguments(f"{name}: {exc}") from None
