"""Mailbox messages that can travel between processes, and their wire form.

A message class marked `@travels("op")` is a dataclass whose plain fields
(strings, numbers, bytes, lists, maps) are sent as they are; two fields are
special: `reply` (the future an answer settles) stays behind and is settled
by the answer, and `peer` (the client socket a message is about) is
sent as the socket's id. A class with a field that is not plain implements
`to_wire()` and `from_wire(fields)`. Every message has one `op` name, so the
receiving process rebuilds the same message for its own instance of the actor.

`opens`/`closes` say that a message starts or ends a socket's membership of
the actor (a document's join, an actor connection): a process relaying a
client to an actor owned elsewhere keeps its membership list from these.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: Fields that name the client socket a message is about.
PEER_FIELDS = ("peer",)
#: Fields never sent: the answer's future, and the socket (sent as its id).
_LOCAL_FIELDS = {"reply", *PEER_FIELDS}

_BY_OP: dict[str, type] = {}


class Travel:
    """How one message class travels."""

    __slots__ = ("closes", "fields", "op", "opens", "peer_field")

    def __init__(self, cls: type, op: str, opens: bool, closes: bool) -> None:
        self.op = op
        self.opens = opens
        self.closes = closes
        names = [f.name for f in dataclasses.fields(cls)]
        self.peer_field = next((name for name in PEER_FIELDS if name in names), None)
        self.fields = [name for name in names if name not in _LOCAL_FIELDS]


def travels(op: str, *, opens: bool = False, closes: bool = False) -> Any:
    """Class decorator: instances of this dataclass may be sent to another process."""
    def mark(cls: type) -> type:
        if op in _BY_OP:
            raise ValueError(f"op {op!r} is already used by {_BY_OP[op].__name__}")
        cls.__travel__ = Travel(cls, op, opens, closes)  # type: ignore[attr-defined]
        _BY_OP[op] = cls
        return cls
    return mark


def travel_of(message: Any) -> Travel | None:
    return getattr(type(message), "__travel__", None)


def peer_of(message: Any) -> Any:
    """The client socket `message` is about, or None."""
    travel = travel_of(message)
    if travel is None or travel.peer_field is None:
        return None
    return getattr(message, travel.peer_field)


def encode(message: Any) -> tuple[str, dict[str, Any]]:
    """(op, fields) of a message that travels. Raises TypeError for one that does not."""
    travel = travel_of(message)
    if travel is None:
        raise TypeError(f"{type(message).__name__} does not travel between processes")
    to_wire = getattr(message, "to_wire", None)
    if to_wire is not None:
        return travel.op, to_wire()
    return travel.op, {name: getattr(message, name) for name in travel.fields}


def decode(op: str, fields: dict[str, Any], *, peer: Any = None,
           reply: Any = None, **context: Any) -> Any:
    """The message `op` with `fields`, about `peer`, answering into `reply`. Fields
    named in `context` (e.g. the sending node) are filled from it when the class
    has them. Raises ValueError for an unknown op or fields that do not fit."""
    cls = _BY_OP.get(op)
    if cls is None:
        raise ValueError(f"unknown op {op!r}")
    travel: Travel = cls.__travel__  # type: ignore[attr-defined]
    from_wire = getattr(cls, "from_wire", None)
    values = dict(from_wire(fields)) if from_wire is not None else {
        name: fields[name] for name in travel.fields if name in fields}
    names = {f.name for f in dataclasses.fields(cls)}
    for name, value in context.items():
        if name in names:
            values[name] = value
    if "reply" in names:
        values["reply"] = reply
    if travel.peer_field is not None:
        values[travel.peer_field] = peer
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad fields for {op!r}: {exc}") from None
