"""The `collab` command: `serve` runs the server, `migrate` brings the schema up to date,
`token` prints a client token signed with COLLAB_SECRET, `actors` shows what the store
holds for application actors (cli_actors.py), `docs` manages documents in the store
(cli_docs.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from collab import __version__, cli_actors, cli_docs, eventloop, logs
from collab.auth import issue_token, load_hook, parse_ttl
from collab.config import (
    ConfigError,
    Settings,
    deployment_warnings,
    redact_url,
    security_warnings,
)
from collab.gateway.workers import REUSE_PORT_ENV


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"collab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="interface to bind (env HOST; default 127.0.0.1, "
                                      "or 0.0.0.0 when PORT is set)")
    serve.add_argument("--port", type=int, help="port to bind, 0 for any (env PORT; default 1234)")
    serve.add_argument("--database-url", help="store URL (env DATABASE_URL; "
                                              "default sqlite:///./collab.db)")
    serve.add_argument("--app", help="your actors: 'package.module:registry', a collab.Registry "
                                     "(env COLLAB_APP)")
    serve.add_argument("--workers", type=int,
                       help="server processes sharing the port, e.g. one per core "
                            "(env WEB_CONCURRENCY; default 1; above 1 needs REDIS_URL)")
    migrate = sub.add_parser("migrate", help="create or upgrade the schema, then exit")
    migrate.add_argument("--database-url", help="store URL (env DATABASE_URL)")
    migrate.set_defaults(host=None, port=None, app=None, workers=None)
    token = sub.add_parser("token", help="print a client token signed with COLLAB_SECRET")
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--doc", action="append", default=[], metavar="PATTERN",
                       help="documents the token grants, * matches any run (repeatable)")
    token.add_argument("--room", action="append", default=[], metavar="PATTERN",
                       help="chat rooms the token grants (repeatable)")
    token.add_argument("--read-only", action="store_true", help="grant read, not write")
    token.add_argument("--admin", action="store_true", help="may call the admin API")
    token.add_argument("--ttl", default="1h", help="lifetime: 30m, 1h, 2d (default 1h)")
    token.set_defaults(host=None, port=None, database_url=None, app=None, workers=None)
    cli_actors.add_parser(sub)
    cli_docs.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "token":
        return _token(args)
    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            database_url=args.database_url,
        )
    except ConfigError as exc:
        print(f"collab: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings)
    if args.command == "actors":  # reads the store: no deployment to warn about
        return cli_actors.run(args, settings)
    if args.command == "docs":  # works on the store: no deployment to warn about
        return cli_docs.run(args, settings)
    if not os.environ.get(REUSE_PORT_ENV):  # in a worker child: its parent has warned
        for warning in deployment_warnings(settings):
            logging.getLogger("collab").warning(warning)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if not os.environ.get(REUSE_PORT_ENV):
        for warning in security_warnings(settings):
            logging.getLogger("collab").warning(warning)
    workers = args.workers if args.workers is not None else _int_env("WEB_CONCURRENCY", 1)
    if workers < 1:
        print("collab: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1:
        if not settings.redis_url:
            print("collab: --workers above 1 needs REDIS_URL: the workers share actors "
                  "through leases in Redis (set REDIS_URL, or run one worker)", file=sys.stderr)
            return 2
        from collab.gateway.workers import run_workers

        return eventloop.run(run_workers(settings, workers, argv), settings.event_loop)
    from collab.gateway.serve import serve
    from collab.runtime.registry import load_registry

    # `collab serve --app myapp:registry` (or COLLAB_AUTH_HOOK=myapp.auth:hook) from a
    # project directory imports from it.
    sys.path.insert(0, os.getcwd())
    if settings.auth_hook:
        try:
            load_hook(settings.auth_hook)
        except ValueError as exc:
            print(f"collab: {exc}", file=sys.stderr)
            return 2
    registry = None
    app_spec = args.app or os.environ.get("COLLAB_APP")
    if app_spec:
        try:
            registry = load_registry(app_spec)
        except ValueError as exc:
            print(f"collab: {exc}", file=sys.stderr)
            return 2
    return eventloop.run(serve(settings, registry), settings.event_loop)


def _token(args: argparse.Namespace) -> int:
    secret = os.environ.get("COLLAB_SECRET")
    if not secret:
        print("collab: COLLAB_SECRET is not set: it is the key tokens are signed with",
              file=sys.stderr)
        return 2
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"collab: --ttl: {exc}", file=sys.stderr)
        return 2
    print(issue_token(secret, args.user, docs=args.doc, rooms=args.room,
                      read_only=args.read_only, ttl=ttl, admin=args.admin))
    return 0


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else default


async def _migrate(settings: Settings) -> int:
    from collab.storage import open_store

    store = open_store(settings)
    try:
        await store.open()  # open() migrates
    except ConnectionError as exc:
        print(f"collab: {exc}", file=sys.stderr)
        return 1
    try:
        version = await store.migrate()
    finally:
        await store.close()
    print(f"collab: schema at version {version} ({redact_url(settings.database_url)})")
    return 0
