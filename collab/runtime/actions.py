"""Actions: the RPC methods an actor class declares with `@action`, and how a call
is bound to one. Pure bookkeeping: no I/O, no mailbox.

A call names an action and carries positional and keyword arguments that came
off the wire (JSON or msgpack), so arguments are checked before the method runs:
their nesting when the call is made (`CallAction`), then against the method's
signature and its simple annotations (`bind`). A bad call is the caller's error
(`invalid_arguments`), never a crash; what the action then does with good
arguments is its own business (an exception there is `internal`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
import typing
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
#: Levels the arguments of a call may nest (a list in a map in a list...). Every
#: serializer a value meets has a recursion limit (msgpack about 1,000 levels,
#: Python's json as many frames), and one failing deep inside an action or a
#: broadcast would be an internal error; real arguments nest a handful of levels.
MAX_ARGUMENT_DEPTH = 100


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
    """Run action `name` with these arguments; the result (or error) goes to `reply`.
    Raises InvalidArguments if the arguments nest deeper than MAX_ARGUMENT_DEPTH."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reply: asyncio.Future[Any] = field(repr=False)
    #: The socket that sent the call, if it came over the native protocol.
    outlet: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_depth(self.args, f"{self.name}: arguments")
        check_depth(self.kwargs, f"{self.name}: arguments")


def check_depth(values: tuple | list | dict, what: str, *,
                limit: int = MAX_ARGUMENT_DEPTH) -> None:
    """Raise InvalidArguments naming `what` if a list, tuple or dict among `values`
    (a call's arguments, or a message's fields) nests deeper than `limit` levels
    ([[1]] is two). Walks with a stack of its own, so any depth is safe to look at."""
    stack = [(values, 0)]
    while stack:
        container, depth = stack.pop()
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, list | tuple | dict):
                if depth >= limit:
                    raise InvalidArguments(f"{what} nest deeper than {limit} levels")
                stack.append((child, depth + 1))


@functools.cache
def _signature(method: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(method)


def bind(method: Callable[..., Any], instance: Any, name: str, args: tuple, kwargs: dict):
    """Check a call's arguments against `method`'s signature and its simple
    annotations (see `_accepted`); raises InvalidArguments naming the problem."""
    signature = _signature(method)
    try:
        bound = signature.bind(instance, *args, **kwargs)
    except TypeError as exc:
        raise InvalidArguments(f"{name}: {exc}") from None
    for parameter, accepted in _checked_parameters(method).items():
        if parameter not in bound.arguments:
            continue  # left to its default
        value = bound.arguments[parameter]
        kind = signature.parameters[parameter].kind
        values = (value if kind is inspect.Parameter.VAR_POSITIONAL
                  else value.values() if kind is inspect.Parameter.VAR_KEYWORD else (value,))
        for each in values:
            if not _fits(each, accepted):
                raise InvalidArguments(f"{name}: {parameter} must be "
                                       f"{_describe(accepted)}, not {_type_name(each)}")


#: Annotations `bind` checks, and the runtime types each accepts. JSON and msgpack
#: bring lists (a caller in this process may pass a tuple for one), and a float
#: parameter takes an int (PEP 484's numeric tower).
_SIMPLE: dict[Any, tuple[type, ...]] = {
    int: (int,), float: (float, int), str: (str,), bool: (bool,), bytes: (bytes,),
    list: (list, tuple), dict: (dict,), None: (type(None),), type(None): (type(None),),
}


@functools.cache
def _checked_parameters(method: Callable[..., Any]) -> dict[str, tuple[type, ...]]:
    """{parameter: accepted runtime types} for the parameters of `method` annotated
    with simple types only (int, float, str, bool, bytes, list[...], dict[...],
    None, and unions of them); others (Any, classes, Literal, ...) are not checked.
    A parameter whose default is None also takes None."""
    namespace = getattr(inspect.unwrap(method), "__globals__", {})
    checked: dict[str, tuple[type, ...]] = {}
    for parameter in list(_signature(method).parameters.values())[1:]:  # past self
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            continue
        if isinstance(annotation, str):  # postponed (`from __future__ import annotations`)
            try:
                annotation = eval(annotation, namespace)
            except Exception:
                continue  # a name only a type checker sees: nothing to check at runtime
        accepted = _accepted(annotation)
        if accepted is not None:
            if parameter.default is None:
                accepted = (*accepted, type(None))
            checked[parameter.name] = tuple(dict.fromkeys(accepted))
    return checked


def _accepted(annotation: Any) -> tuple[type, ...] | None:
    """The runtime types a simple annotation accepts, or None if it is not simple."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [_accepted(member) for member in typing.get_args(annotation)]
        if any(member is None for member in members):
            return None
        return tuple(kind for member in members for kind in member)  # type: ignore[union-attr]
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        annotation = origin  # the container is checked, not its items
    try:
        return _SIMPLE.get(annotation)
    except TypeError:  # an unhashable annotation
        return None


def _fits(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to a caller
        return bool in accepted
    return isinstance(value, accepted)


def _describe(accepted: tuple[type, ...]) -> str:
    names = {"NoneType": "null", "tuple": None}
    return " or ".join(dict.fromkeys(
        name for kind in accepted if (name := names.get(kind.__name__, kind.__name__))))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__
