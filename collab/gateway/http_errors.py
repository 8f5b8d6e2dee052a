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


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error becomes JSON with its code and the status its class carries
    (collab/errors.py); a bug is logged with its traceback and answered 500."""
    try:
        return await handler(request)
    except CollabError as exc:
        if exc.status == 500 and not exc.logged:
            log.exception("error handling %s %s", request.method, request.path)
        response = error_response(exc.status, exc.code, exc.message)
        if exc.status in BODY_LEFT_UNREAD:
            response.force_close()  # what is left of the body must not be read as a request
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or exc.empty_body:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("error handling %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error")
