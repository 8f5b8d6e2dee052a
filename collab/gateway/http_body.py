"""HTTP request bodies: read whole or refused, then decoded (JSON, or msgpack when the
caller says so) into a value. A body over COLLAB_MAX_MESSAGE_BYTES is 413
`too_large`, with or without Content-Length; every way a body can be bad (not
UTF-8, not JSON or msgpack, nested deeper than the decoder allows, holding a string
that is not valid Unicode: a lone surrogate no store can hold) is one clear 400."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgpack
from aiohttp import web

from collab.errors import BadRequest
from collab.gateway.app_keys import SETTINGS
from collab.protocol.codec import unpack_client
from collab.protocol.text import InvalidText, check_strings, json_may_hold_surrogates


async def read_body(request: web.Request) -> bytes:
    """The whole body of `request` (b"" if it has none), at most the server's
    `max_message_bytes`. Raises BadRequest (413 too_large) as soon as the body is
    known to be larger (by its Content-Length, or once that many bytes have come
    in): nothing past the limit is buffered, and no part of the body is returned.
    A body still arriving after COLLAB_BODY_TIMEOUT is 408 `body_timeout`."""
    settings = request.app[SETTINGS]
    limit = settings.max_message_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    body = bytearray()
    try:
        async with asyncio.timeout(settings.body_timeout):
            # readany() gives whatever has arrived; read(n) would too, which is why a
            # loop to the end of the stream is the only way to get a whole body.
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit)
    except TimeoutError:
        raise BadRequest(f"the body did not arrive within {settings.body_timeout:g} s "
                         "(COLLAB_BODY_TIMEOUT)", code="body_timeout", status=408) from None
    return bytes(body)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(f"body larger than {limit} bytes (COLLAB_MAX_MESSAGE_BYTES)",
                      code="too_large", status=413)


def decode_body(body: bytes, binary: bool = False) -> Any:
    """`body` as msgpack (`binary`) or JSON; raises BadRequest (400 invalid_body)."""
    try:
        value = unpack_client(body) if binary else json.loads(body)
    except (ValueError, RecursionError, msgpack.UnpackException) as exc:
        kind = "msgpack" if binary else "JSON"
        raise BadRequest(f"body is not valid {kind}: {exc}", code="invalid_body") from None
    if not binary and json_may_hold_surrogates(body):  # msgpack's strings are UTF-8 already
        try:
            check_strings(value, "the body")
        except InvalidText as exc:
            raise BadRequest(exc.message, code=exc.code) from None
    return value
