"""Names of documents and actor keys: the one pattern every endpoint accepts, checked
before any upgrade.

A name is 1-128 characters of `A-Z a-z 0-9 . _ ~ -`, optionally in `/`-separated
segments (`team/notes`); no empty, `.` or `..` segment. Names are only ever
used as database keys, never as file paths.
"""

from __future__ import annotations

import re

from collab.errors import BadRequest

MAX_NAME_LENGTH = 128
_SEGMENT = r"[A-Za-z0-9._~-]+"
_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
NAME_PATTERN = r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$ (1-128 chars, no '.' or '..' segment)"


def parse_doc_name(raw: str) -> str:
    """Return `raw` if it is a valid document name, else raise BadRequest (400)."""
    return parse_key(raw, what="document name")


def parse_key(raw: str, *, what: str) -> str:
    """Return `raw` if it follows the name pattern (documents, actor keys), else raise
    BadRequest (400) saying which `what` was wrong."""
    if raw in _recently_valid:
        return raw
    if (
        not 0 < len(raw) <= MAX_NAME_LENGTH
        or _NAME.fullmatch(raw) is None
        or any(segment in (".", "..") for segment in raw.split("/"))
    ):
        raise BadRequest(f"invalid {what}; names match {NAME_PATTERN}", code="invalid_name")
    if len(_recently_valid) >= _VALID_CACHE_SIZE:
        _recently_valid.clear()  # crude, but bounded: refills with the names in use
    _recently_valid.add(raw)
    return raw


#: Names already checked: a socket names the same actor or document on every request.
_VALID_CACHE_SIZE = 4096
_recently_valid: set[str] = set()
