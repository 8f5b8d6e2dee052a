"""The server's rules for document names, actor keys and actor types
(docs/protocol.md section 3), checked before anything is sent, so a typo fails at
once with a clear message instead of as an `invalid_name` answer later."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*")
#: The server's actor type rule (collab/runtime/actor.py KIND_PATTERN).
_ACTOR_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
#: Characters in a document name or actor key (the server's limit).
MAX_NAME_LENGTH = 128


def check_name(name: object, what: str) -> str:
    """`name` if it is a valid document name or actor key; raises ValueError (or
    TypeError for a non-string) naming `what` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, not {type(name).__name__}")
    if not (0 < len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name)
            and all(segment not in (".", "..") for segment in name.split("/"))):
        raise ValueError(f"invalid {what} {name!r}: use 1-{MAX_NAME_LENGTH} characters of "
                         "A-Z a-z 0-9 . _ ~ - in /-separated segments, none of them . or ..")
    return name


def check_actor_type(kind: object) -> str:
    """`kind` if it is an actor type (a lowercase name); raises ValueError otherwise."""
    if not isinstance(kind, str) or not _ACTOR_TYPE.fullmatch(kind):
        raise ValueError(f"invalid actor type {kind!r}: actor types are 1-64 characters of "
                         "a-z 0-9 _ -, starting with a letter")
    return kind
