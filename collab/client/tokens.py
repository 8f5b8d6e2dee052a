"""Where the client's credentials come from: nothing, a fixed string, or a function
(plain or async) returning one.

A function's result is kept and reused for every reconnect, so a flaky network
does not turn into a stream of calls to an auth service; it is called again only
once the server has refused the token (close code 4401), or after it failed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

TokenFunction = Callable[[], "str | Awaitable[str | None] | None"]


class TokenSource:
    def __init__(self, token: str | TokenFunction | None) -> None:
        if token is not None and not isinstance(token, str) and not callable(token):
            raise TypeError("token must be a string or a function returning one")
        self._token = token
        self._current: str | None = None
        self._known = False

    async def get(self) -> str | None:
        """The token to connect with, or None for none. Raises whatever the function
        raises (nothing is kept then, so the next call asks again), or TypeError for
        a result that is not a string."""
        if not callable(self._token):
            return self._token
        if not self._known:
            token = self._token()
            if inspect.isawaitable(token):
                token = await token
            if token is not None and not isinstance(token, str):
                raise TypeError("the token function must return a string (or None)")
            self._current, self._known = token, True
        return self._current

    def invalidate(self) -> None:
        """Forget the kept token: the next `get` calls the function again."""
        self._known = False
        self._current = None
