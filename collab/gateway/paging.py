"""Page sizes of the HTTP listings (`GET /api/docs`, `GET /api/admin/actors`): one
parser, so every listing answers a bad `limit` the same way."""

from __future__ import annotations

from collab.errors import BadRequest


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    """The `limit` query parameter: `default` when absent, else a whole number from
    1 to `maximum`, or BadRequest `invalid_limit`."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}, got {raw!r}",
                         code="invalid_limit")
    return int(raw)
