"""`collab docs ls|export|import|rm|compact`: documents managed on the store at
DATABASE_URL directly, whether a server runs on it or not. Each does what the
server does for the same request (`GET /api/docs`, `GET`, `PUT` and `DELETE
/api/docs/<doc>`, a compaction), with no actor: actors/offline.py.

A server that has the document loaded does not see `rm` or `import` until its
next write for it is refused (the incarnation changed); meanwhile it serves what
it holds. With a server running, prefer the HTTP API (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from collab.actors import offline
from collab.actors.ydoc import importable
from collab.cli_store import (
    BAD_USAGE,
    NOT_FOUND_OR_UNREACHABLE,
    StoreClosed,
    fail,
    no_store,
    opened,
)
from collab.config import Settings
from collab.errors import BadRequest, CollabError, DocumentNotFound, StoreUnavailable
from collab.gateway.docs_api import LIST_LIMIT, MAX_LIST_LIMIT
from collab.gateway.names import parse_doc_name
from collab.runtime.inspection import iso_time
from collab.storage.base import DocumentReplaced, Store, StoredDocument

#: Times `import`, `rm` and `compact` read the document again and retry when a
#: server deleted or replaced it between their read and their write (the store
#: refuses the write: DocumentReplaced). Each retry starts from what the server
#: left, so more than one is needed only if it keeps replacing the document.
MAX_ATTEMPTS = 5
#: Documents `compact --all` reads from the catalog per page.
COMPACT_PAGE = 100
#: What `import` reads its update from when FILE is this.
STDIN = "-"

#: What a verb does on the open store; `export` returns the state to write out.
Verb = Callable[[Store], Awaitable[bytes | None]]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`collab docs ...` on the `collab` command's subcommands."""
    docs = sub.add_parser("docs", help="list, export, import, delete and compact documents "
                                       "in the store")
    verbs = docs.add_subparsers(dest="verb", required=True)
    ls = verbs.add_parser("ls", help="list documents by name: name, bytes, last written")
    ls.add_argument("--prefix", default="", help="only names starting with this")
    ls.add_argument("--limit", type=int, default=LIST_LIMIT,
                    help=f"documents at most (default {LIST_LIMIT}, at most {MAX_LIST_LIMIT})")
    ls.add_argument("--after", metavar="NAME", help="start after this name (a page's next)")
    ls.add_argument("--json", action="store_true",
                    help='print {"docs": [...], "next": ...} as GET /api/docs does')
    export = verbs.add_parser("export", help="the document's full state as a Yjs v1 update")
    export.add_argument("name")
    export.add_argument("-o", "--output", metavar="FILE", help="write it here, not to stdout")
    imp = verbs.add_parser("import", help="replace or create the document from a Yjs v1 "
                                          "update, as a new incarnation (PUT /api/docs/<doc>)")
    imp.add_argument("name")
    imp.add_argument("file", help=f"the update, or {STDIN} for stdin")
    rm = verbs.add_parser("rm", help="delete the document; nothing of it can come back "
                                     "(DELETE /api/docs/<doc>)")
    rm.add_argument("name")
    compact = verbs.add_parser("compact", help="fold the document's log into its snapshot")
    which = compact.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?")
    which.add_argument("--all", action="store_true", help="every document")
    for verb in (ls, export, imp, rm, compact):
        verb.add_argument("--database-url", help="store URL (env DATABASE_URL)")
        verb.set_defaults(host=None, port=None, app=None, workers=None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `collab docs VERB`; returns the exit status (the answer is on stdout, a
    refusal on stderr). The command line and an import's update are checked
    before the store is opened."""
    try:
        verb = _verb(args, settings)
    except CollabError as exc:
        return fail(f"docs {args.verb}: {exc.message}", BAD_USAGE)
    except OSError as exc:
        return fail(f"docs {args.verb}: cannot read {args.file}: {exc.strerror}", BAD_USAGE)
    refused = no_store(settings)
    if refused is not None:
        return refused
    status, state = asyncio.run(_on_store(settings, verb))
    if state is None:
        return status
    try:
        _write_out(state, args.output)
    except OSError as exc:
        return fail(f"docs export: cannot write {args.output}: {exc.strerror}", BAD_USAGE)
    return status


def _verb(args: argparse.Namespace, settings: Settings) -> Verb:
    """What to do on the store, once the command line is known to be good."""
    if args.verb == "ls":
        if not 1 <= args.limit <= MAX_LIST_LIMIT:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}",
                             code="invalid_limit")
        return lambda store: _ls(store, args.prefix, args.after, args.limit, args.json)
    if args.verb == "compact" and args.all:
        return _compact_all
    name = parse_doc_name(args.name)
    if args.verb == "export":
        return lambda store: _export(store, name)
    if args.verb == "import":
        update = _read_update(args.file)
        importable(name, update, settings.max_document_bytes)
        content = update
        return lambda store: _end_incarnation(store, name, content)
    if args.verb == "rm":
        return lambda store: _end_incarnation(store, name, None)
    return lambda store: _compact(store, name)


async def _on_store(settings: Settings, verb: Verb) -> tuple[int, bytes | None]:
    """The exit status and what the verb exported, if anything."""
    try:
        async with opened(settings) as store:
            return 0, await verb(store)
    except StoreClosed as exc:
        return fail(str(exc), NOT_FOUND_OR_UNREACHABLE), None
    except CollabError as exc:  # the document is not there; the store refused or failed
        return fail(exc.message, NOT_FOUND_OR_UNREACHABLE), None


def _read_update(file: str) -> bytes:
    return sys.stdin.buffer.read() if file == STDIN else Path(file).read_bytes()


def _write_out(state: bytes, output: str | None) -> None:
    if output is None:
        sys.stdout.buffer.write(state)
        sys.stdout.buffer.flush()
    else:
        Path(output).write_bytes(state)


def _print_json(answer: dict[str, Any], indent: int | None = None) -> None:
    print(json.dumps(answer, indent=indent, ensure_ascii=False), flush=True)


# -- the verbs -----------------------------------------------------------------


async def _ls(store: Store, prefix: str, after: str | None, limit: int, as_json: bool) -> None:
    """A page of the listing, as GET /api/docs answers it but for `loaded`: which
    documents a server holds in memory is not in the store."""
    page = await store.list_documents(prefix, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    after = page[-1].name if more else None
    if as_json:
        _print_json({"docs": [{"name": info.name, "bytes": info.bytes,
                               "created_at": iso_time(info.created_at),
                               "updated_at": iso_time(info.updated_at)} for info in page],
                     "next": after}, indent=2)
        return
    for info in page:
        print(f"{info.name}\t{info.bytes}\t{iso_time(info.updated_at)}")
    if after is not None:
        # On stderr: stdout stays one line per document for scripts.
        print(f"collab: more documents: the next page is --after {after}", file=sys.stderr)


async def _export(store: Store, name: str) -> bytes:
    """The document's state, written out once the store is closed."""
    return offline.export(_existing(name, await store.load_document(name)))


async def _end_incarnation(store: Store, name: str, content: bytes | None) -> None:
    """Delete the document (`content` None: it must exist) or replace it with
    `content`, as one write; prints {"doc", "epoch"} with its new incarnation."""
    for _ in range(MAX_ATTEMPTS):
        stored = await store.load_document(name)
        if content is None:
            _existing(name, stored)
        try:
            await store.write([offline.ending(name, stored, content)])
        except DocumentReplaced:
            continue  # a server ended this incarnation meanwhile: start from what it left
        _print_json({"doc": name, "epoch": stored.epoch + 1})
        return
    raise _kept_changing(name)


async def _compact(store: Store, name: str) -> None:
    """Fold the document's log into its snapshot; prints its log rows and bytes
    before and after."""
    for _ in range(MAX_ATTEMPTS):
        stored = _existing(name, await store.load_document(name))
        write = offline.compaction(name, stored)
        if write is not None:
            try:
                await store.write([write])
            except DocumentReplaced:
                continue
        _print_json({"doc": name, "before": _size(stored),
                     "after": _size(stored) if write is None else
                     {"log_rows": 0, "bytes": len(write.data)}})
        return
    raise _kept_changing(name)


async def _compact_all(store: Store) -> None:
    """`_compact` for every document listed, one JSON line each."""
    after = None
    while True:
        page = await store.list_documents("", after, COMPACT_PAGE)
        for info in page:
            try:
                await _compact(store, info.name)
            except DocumentNotFound:
                pass  # deleted since it was listed: nothing to fold
        if len(page) < COMPACT_PAGE:
            return
        after = page[-1].name


def _existing(name: str, stored: StoredDocument) -> StoredDocument:
    if not offline.exists(stored):
        raise DocumentNotFound(f"document {name!r} does not exist")
    return stored


def _size(stored: StoredDocument) -> dict[str, int]:
    return {"log_rows": len(stored.updates),
            "bytes": len(stored.snapshot or b"") + stored.log_bytes}


def _kept_changing(name: str) -> StoreUnavailable:
    return StoreUnavailable(f"document {name!r} was deleted or replaced {MAX_ATTEMPTS} times "
                            "while this command ran; try again")
