"""Answering a request's reply future: at most once (the caller may have given up on
it: a timeout), with a value, an error, or the outcome of the commit it waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def fail(reply: asyncio.Future[Any], error: BaseException) -> None:
    if not reply.done():
        reply.set_exception(error)


def answer(reply: asyncio.Future[Any], result: Any) -> None:
    if not reply.done():
        reply.set_result(result)


def answer_with(reply: asyncio.Future[Any], compute: Callable[[], Any]) -> None:
    """Answer with `compute()`, or with the exception it raises."""
    try:
        result = compute()
    except Exception as exc:
        fail(reply, exc)
    else:
        answer(reply, result)


def settle(reply: asyncio.Future[Any], result: Any, commit: asyncio.Future[None] | None) -> None:
    """Answer `result` once `commit` (done, or None for nothing to wait for) succeeded,
    or its error."""
    error = commit.exception() if commit is not None else None
    if error is not None:
        fail(reply, error)
    else:
        answer(reply, result)


def settle_after(reply: asyncio.Future[Any], result: Any, commit: asyncio.Future[None]) -> None:
    """Answer `result` when `commit` is done, or its error."""
    commit.add_done_callback(lambda done: settle(reply, result, done))
