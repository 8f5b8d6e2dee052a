"""The one mapper from exceptions to HTTP JSON errors: {"error": {"code", "message"}},
with the status each error class carries (collab/errors.py)."""

from __future__ import annotations

import logging

from aiohttp import web

from collab.errors import CollabError

log = logging.getLogger(__name__)

#: Refusals that leave part of the request's body unread (too large, too slow): the
#: connection closes after the answer rather than wait for the rest.
BODY_LEFT_UNREAD = (408, 413)


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def json_error(request: web.Request, exc: Exception) -> web.Response | None:
    """The JSON answer to `exc`, raised while handling `request`, with the status its
    class carries (collab/errors.py); a bug is logged with its traceback and answered
    500. None for an aiohttp HTTPException that aiohttp answers itself (below 400, or
    with no body)."""
    if isinstance(exc, CollabError):
        if exc.status == 500 and not exc.logged:
            log.error("error handling %s %s", request.method, request.path, exc_info=exc)
        response = error_response(exc.status, exc.code, exc.message)
        if exc.status in BODY_LEFT_UNREAD:
            response.force_close()  # what is left of the body must not be read as a request
        return response
    if isinstance(exc, web.HTTPException):
        if exc.status < 400 or exc.empty_body:
            return None
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    log.error("error handling %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal", "internal server error")
