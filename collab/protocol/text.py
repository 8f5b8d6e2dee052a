"""Text every store can hold. Pure functions, no I/O.

Python strings (and JSON's `\\ud800` escapes) may hold lone UTF-16 surrogates,
which UTF-8, msgpack and Postgres cannot carry; Postgres text cannot hold NUL
either. A string like that reaching a commit would fail the whole batch, so
the edges refuse it: decoded payloads are checked once (`check_strings`),
values stored in text columns are checked where they are accepted
(`check_column`), and text collab writes itself, such as an exception's
message, is made storable (`storable`).
"""

from __future__ import annotations

import re
from typing import Any

from collab.errors import InvalidPayload

#: A JSON `\u` escape of a UTF-16 surrogate (D800-DFFF): only a text holding one
#: can decode to a lone surrogate, so JSON without any skips the walk.
#: Characters kept of an error message collab stores (a dead letter's, a failed
#: workflow's): the exception's type and message, not a traceback.
MAX_ERROR_CHARS = 500
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class InvalidText(InvalidPayload):
    """A string that is not valid Unicode text (or holds NUL where none may be)."""

    code = "invalid_text"


def is_text(value: str) -> bool:
    """True if `value` is valid Unicode (no lone surrogate): UTF-8 can carry it."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def json_may_hold_surrogates(raw: str | bytes) -> bool:
    """False when JSON text `raw` cannot decode to a lone surrogate (the common case)."""
    if isinstance(raw, bytes):
        # json.loads decodes bytes with "surrogatepass": encoded surrogates count too.
        return b"\\u" in raw or b"\xed" in raw
    return _SURROGATE_ESCAPE.search(raw) is not None


def check_strings(value: Any, what: str = "payload") -> None:
    """Raise InvalidText if any string in `value` (map keys included, at any depth)
    is not valid Unicode. Iterative: a deeply nested value cannot exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise InvalidText(f"{what} holds a string that is not valid Unicode text "
                                  "(a lone UTF-16 surrogate)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def check_column(value: str, what: str, max_chars: int) -> None:
    """Raise InvalidText unless `value` fits a text column: valid Unicode, no NUL,
    1 to `max_chars` characters."""
    if not 0 < len(value) <= max_chars:
        raise InvalidText(f"{what} must be 1 to {max_chars} characters")
    if "\x00" in value or not is_text(value):
        raise InvalidText(f"{what} must be valid Unicode text without NUL")


def storable(text: str, max_chars: int) -> str:
    """`text` as a text column can hold it: lone surrogates and NUL escaped, cut
    to `max_chars` characters. For messages collab writes itself (errors)."""
    if not is_text(text):
        text = text.encode("utf-8", "backslashreplace").decode()
    return text.replace("\x00", "\\x00")[:max_chars]
