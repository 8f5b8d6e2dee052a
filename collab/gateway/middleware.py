"""The one middleware every HTTP request passes through: it marks the connection
busy (gateway/sockets.py), checks `/api/` tokens (gateway/http_auth.py), turns
every error into JSON (gateway/http_errors.py) and closes the connection after
answering a request that did not authenticate.

One middleware, not three: a WebSocket's handler runs as long as the socket, and
every middleware around it stays suspended that long, a frame each. With tens of
thousands of open sockets, that is a few hundred bytes per socket per layer.
"""

from __future__ import annotations

from aiohttp import web

from collab.gateway.http_auth import authenticate_api
from collab.gateway.http_errors import json_error
from collab.gateway.sockets import close_unless_authenticated, request_started


@web.middleware
async def gateway(request: web.Request, handler):
    request_started(request)
    try:
        await authenticate_api(request)
        response = await handler(request)
    except Exception as exc:
        answer = json_error(request, exc)
        if answer is None:  # an HTTPException aiohttp answers itself
            close_unless_authenticated(request, exc)  # type: ignore[arg-type]
            raise
        response = answer
    close_unless_authenticated(request, response)
    return response
