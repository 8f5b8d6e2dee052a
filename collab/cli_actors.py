"""`collab actors ls` and `collab actors show KIND KEY`: what the store at
DATABASE_URL holds for application actors, as JSON on stdout (runtime/inspection.py,
the same JSON as the admin API). Reads the store directly, whether a server runs
on it or not; nothing is loaded or woken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from collab.cli_store import (
    BAD_USAGE,
    NOT_FOUND_OR_UNREACHABLE,
    StoreClosed,
    fail,
    no_store,
    opened,
)
from collab.config import Settings
from collab.errors import CollabError
from collab.runtime.inspection import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_kind,
    check_limit,
    list_page,
    parse_cursor,
    show,
)
from collab.storage.base import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`collab actors ...` on the `collab` command's subcommands."""
    actors = sub.add_parser("actors", help="inspect what the store holds for application actors")
    verbs = actors.add_subparsers(dest="verb", required=True)
    ls = verbs.add_parser("ls", help="list the actors with anything stored, by kind and key")
    ls.add_argument("--kind", help="only actors of this kind")
    ls.add_argument("--limit", type=int, default=DEFAULT_PAGE_SIZE,
                    help=f"actors at most (default {DEFAULT_PAGE_SIZE}, "
                         f"at most {MAX_PAGE_SIZE})")
    ls.add_argument("--after", metavar="KIND:KEY",
                    help='start after this actor (the previous page\'s "next")')
    show_cmd = verbs.add_parser("show", help="everything stored for one actor")
    show_cmd.add_argument("kind")
    show_cmd.add_argument("key")
    for verb in (ls, show_cmd):
        verb.add_argument("--database-url", help="store URL (env DATABASE_URL)")
        verb.set_defaults(host=None, port=None, app=None, workers=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `collab actors ls|show`; returns the exit status (the answer is on stdout,
    a refusal on stderr)."""
    read: Callable[[Store], Awaitable[dict[str, Any]]]
    try:
        if args.verb == "ls":
            read = partial(list_page,
                           kind=None if args.kind is None else check_kind(args.kind),
                           after=None if args.after is None else parse_cursor(args.after),
                           limit=check_limit(args.limit))
        else:
            read = partial(show, kind=check_kind(args.kind), key=args.key)
    except CollabError as exc:
        return fail(f"actors {args.verb}: {exc.message}", BAD_USAGE)
    refused = no_store(settings)
    if refused is not None:
        return refused
    return asyncio.run(_print(settings, read))


async def _print(settings: Settings, read: Callable[[Store], Awaitable[dict[str, Any]]]
                 ) -> int:
    try:
        async with opened(settings) as store:
            answer = await read(store)
    except StoreClosed as exc:
        return fail(str(exc), NOT_FOUND_OR_UNREACHABLE)
    except CollabError as exc:
        return fail(exc.message, NOT_FOUND_OR_UNREACHABLE)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0
