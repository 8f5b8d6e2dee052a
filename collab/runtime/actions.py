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

import ast
import asyncio
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from collab.errors import CloseCode, CollabError
from collab.runtime.travels import travels

if TYPE_CHECKING:
    from collab.runtime.mailbox import ActorBase
    from collab.runtime.system import ActorSystem

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
    """Every `@action` method of `cls` and its bases, by name. Raises ValueError if
    one has a name the runtime uses (`refuse_runtime_names`)."""
    found = {name: member for name, member, _ in marked_methods(cls, "__collab_action__")}
    refuse_runtime_names(cls, found, "@collab.action")
    return found


# -- the runtime's names ------------------------------------------------------------------

#: What an application actor may define over the runtime's own attributes: its hooks
#: and settings (docs/actors.md), and `handle` (a Room subclass may extend it, calling
#: the Room's). Python's own dunders (`__init__`, `__repr__`, ...) are not checked.
OVERRIDABLE = frozenset({
    "kind", "initial_state", "on_create", "on_wake", "on_sleep", "on_before_connect",
    "on_connect", "on_disconnect", "queue_max_length", "queue_max_attempts",
    "queue_retry_base", "inboxes", "handle",
})


@functools.cache
def runtime_names() -> dict[str, str]:
    """{name: where the runtime uses it} for every attribute of the runtime's actor
    classes (collab.runtime.mailbox.ActorBase and collab.runtime.actor.Actor, public
    or not, their methods and what they assign to `self`) and the method names its
    own timers call. An action, consumer or workflow of that name would be called,
    or would replace what is called, by the runtime: `save` breaks hibernation, a
    consumer `handle` receives every mailbox message. Computed from the classes."""
    from collab.runtime.actor import Actor
    from collab.runtime.mailbox import ActorBase  # imported late: they import this module
    from collab.runtime.queues import DRAIN_METHOD
    from collab.runtime.workflows import RESUME_METHOD

    names = {DRAIN_METHOD: "the runtime's queue timers", RESUME_METHOD:
             "the runtime's workflow timers"}
    for runtime_class in (ActorBase, Actor):  # Actor's own definitions win
        where = f"{runtime_class.__module__}.{runtime_class.__name__}"
        for name in _assigned_to(runtime_class, "self"):
            names[name] = f"{where}, on every instance"
        for name in vars(runtime_class):
            names[name] = where
    return names


@functools.cache
def _set_on_subclasses() -> frozenset[str]:
    """What the runtime itself sets on each actor class (`cls.kind`, `cls._actions`
    in `__init_subclass__`): found on a subclass, but not the subclass's doing."""
    from collab.runtime.actor import Actor
    from collab.runtime.mailbox import ActorBase

    return frozenset(_assigned_to(ActorBase, "cls") | _assigned_to(Actor, "cls"))


def _assigned_to(cls: type, target: str) -> set[str]:
    """The attributes the methods of `cls` set on `target` ("self" or "cls"), read
    from its source; none if the source is not there (then class attributes only)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return set()
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name) and node.value.id == target}


def refuse_runtime_names(cls: type, names: Iterable[str], what: str) -> None:
    """Raise ValueError if one of `names` (of `what`, e.g. "@collab.action", on
    `cls`) is a name the runtime uses: the two would share one namespace."""
    used = runtime_names()
    for name in names:
        if name in used:
            raise ValueError(f"{cls.__qualname__}.{name}: {what} may not be named {name!r}, "
                             f"a name collab's runtime uses ({used[name]}); rename it")


def refuse_overrides(cls: type) -> None:
    """Raise ValueError if `cls` (an application actor class) or one of its own bases
    defines an attribute the runtime uses and does not offer to override
    (OVERRIDABLE): a method `load` or `submit`, a class attribute `state`, ..."""
    used = runtime_names()
    allowed = OVERRIDABLE | _set_on_subclasses()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == "collab":
            continue  # the runtime, and built-in actors written on it
        for name in vars(klass):
            if name in used and name not in allowed \
                    and not (name.startswith("__") and name.endswith("__")):
                raise ValueError(
                    f"{klass.__qualname__}.{name} replaces the runtime's own {name!r} "
                    f"({used[name]}); rename it (the hooks an actor may override are "
                    f"{', '.join(sorted(OVERRIDABLE))})")


class ActionError(CollabError):
    """Raised by an action to refuse a call with a stable `code` the caller sees.

    State changes made by the failing call are rolled back.
    """

    code = "action_error"
    status = 400


class RateLimited(ActionError):
    """Past a write or wake-up rate: slow down and retry."""

    code = "rate_limited"
    status = 429
    close_code = CloseCode.RATE_LIMITED


class UnknownAction(ActionError):
    code = "unknown_action"
    status = 404


class InvalidArguments(ActionError):
    code = "invalid_arguments"


class CallTimeout(ActionError):
    code = "call_timeout"
    status = 504

    @classmethod
    def after(cls, kind: str, key: str, what: str, timeout: float) -> CallTimeout:
        return cls(f"{kind}:{key} did not answer {what} within {timeout} s")


def ask(system: ActorSystem, cls: type[ActorBase], key: str,
        make_message: Callable[[asyncio.Future[Any]], Any], what: str,
        timeout: float = DEFAULT_CALL_TIMEOUT) -> asyncio.Future[Any]:
    """The one way to ask an actor: post `make_message(reply)` to (cls, key) and return
    `reply`, bounded by `timeout` (`bound`)."""
    reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    system.post(cls, key, make_message(reply))
    bound(reply, cls.kind, key, what, timeout)
    return reply


def bound(reply: asyncio.Future[Any], kind: str, key: str, what: str,
          timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
    """Fail `reply` with CallTimeout unless actor (kind, key) answers it within
    `timeout` seconds: a timer, not a task per request."""
    if reply.done():
        return

    def expire() -> None:
        if not reply.done():
            reply.set_exception(CallTimeout.after(kind, key, what, timeout))

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    reply.add_done_callback(lambda _: timer.cancel())


@travels("call")
@dataclass(frozen=True, slots=True)
class CallAction:
    """Run action `name` with these arguments; the result (or error) goes to `reply`.
    Raises InvalidArguments if the arguments nest deeper than MAX_ARGUMENT_DEPTH."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reply: asyncio.Future[Any] = field(repr=False)
    #: The socket that sent the call, if it came over the native protocol and is
    #: connected to the actor.
    peer: Any = field(default=None, repr=False)
    #: Who to meter the call against, set by the gateway: the socket that sent it
    #: ("ws:<id>"), or for HTTP the token's user ("user:<sub>") or the client's
    #: address ("addr:<ip>"). None: a call from another actor in this process, trusted.
    caller: str | None = None

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
