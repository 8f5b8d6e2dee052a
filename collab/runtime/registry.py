"""The registry: which actor types a server runs, by the `kind` name clients use.

An application hands one to `collab serve --app module:attribute`; the server
adds its built-in types (the Yjs `doc`) next to the application's. It also holds
the application's stateless hooks (runtime/stateless.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from collab.errors import CollabError
from collab.runtime.actions import marked_methods, refuse_overrides, refuse_runtime_names
from collab.runtime.stateless import StatelessFunction, StatelessHook
from collab.runtime.watches import DOCUMENTS, Watch, watches_of

if TYPE_CHECKING:
    from collab.runtime.actor import Actor

F = TypeVar("F", bound=StatelessFunction)


class UnknownActorType(CollabError):
    code = "unknown_actor_type"
    status = 404


class Registry:
    """A set of actor classes addressed by their `kind`."""

    def __init__(self, *actor_types: type[Actor]) -> None:
        self._types: dict[str, type[Actor]] = {}
        self._stateless: list[StatelessHook] = []
        #: Every registered type's watches, found once (every actor load asks).
        self._watches: list[Watch] | None = None
        for cls in actor_types:
            self.register(cls)

    def register(self, cls: type[Actor]) -> type[Actor]:
        """Add `cls` (usable as a class decorator). Two types may not share a kind, and
        an application's class may not use the runtime's names for its actions,
        consumers, workflows or other attributes (ValueError naming the attribute)."""
        _check_names(cls)
        existing = self._types.get(cls.kind)
        if existing is not None and existing is not cls:
            raise ValueError(f"two actor types named {cls.kind!r}: "
                             f"{existing.__qualname__} and {cls.__qualname__}")
        self._types[cls.kind] = cls
        self._watches = None
        return cls

    def watches_for(self, name: str, of: str = DOCUMENTS) -> list[Watch]:
        """The watches (runtime/watches.py) of every registered type that match
        document `name` (or room `name`, with `of=ROOMS`)."""
        if self._watches is None:
            self._watches = [w for cls in self._types.values() for w in watches_of(cls)]
        return [w for w in self._watches if w.of == of and w.matches(name)]

    def stateless(self, pattern: str = "*") -> Callable[[F], F]:
        """Decorator: `fn(message)` (a function or coroutine function) hears the
        stateless messages clients send about the documents whose names match
        `pattern` (fnmatch), and may answer them (runtime/stateless.py)."""
        if not isinstance(pattern, str):
            raise TypeError("@registry.stateless takes a document name pattern: "
                            "@registry.stateless('notes/*'), or () for every document")

        def mark(fn: F) -> F:
            if not callable(fn):
                raise TypeError(f"a stateless hook must be callable, not {fn!r}")
            self._stateless.append(StatelessHook(pattern, fn))
            return fn
        return mark

    def stateless_hooks_for(self, doc: str) -> list[StatelessFunction]:
        """The stateless hooks for document `doc`, in the order they were registered."""
        return [hook.fn for hook in self._stateless if hook.matches(doc)]

    def resolve(self, kind: str) -> type[Actor]:
        cls = self._types.get(kind)
        if cls is None:
            raise UnknownActorType(f"no actor type {kind!r}; this server has "
                                   f"{', '.join(sorted(self._types)) or 'none'}")
        return cls

    def merged(self, other: Registry) -> Registry:
        """Both registries' actor types and stateless hooks (this one's first)."""
        merged = Registry(*self, *other)
        merged._stateless = [*self._stateless, *other._stateless]
        return merged

    def __iter__(self) -> Iterator[type[Actor]]:
        return iter(self._types.values())

    def __contains__(self, kind: str) -> bool:
        return kind in self._types


def _check_names(cls: type) -> None:
    """Refuse what would share a name with the runtime: any marked method (also
    those of classes not built on collab.Actor), and for application classes any
    attribute that replaces the runtime's (actions.refuse_overrides)."""
    from collab.runtime.actor import Actor  # imported late: it imports this module

    for marker, what in (("__collab_action__", "@collab.action"),
                         ("__collab_consumes__", "@collab.consumes"),
                         ("__collab_workflow__", "@collab.workflow")):
        refuse_runtime_names(cls, (name for name, _, _ in marked_methods(cls, marker)), what)
    if issubclass(cls, Actor):
        refuse_overrides(cls)


def load_registry(spec: str) -> Registry:
    """Import `module:attribute` (a Registry). Raises ValueError with a readable reason."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--app must look like 'package.module:registry', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--app {spec}: cannot import {module_name!r}: {exc}") from exc
    registry = getattr(module, attribute, None)
    if not isinstance(registry, Registry):
        raise ValueError(f"--app {spec}: {attribute!r} is not a collab.Registry")
    return registry
