"""``carwash-cloud``: the cloud service of a car-wash chain, and its administration.

    carwash-cloud init  --db URL --org NAME
    carwash-cloud user  add|passwd|disable|list --db URL ...
    carwash-cloud site  add --db URL --name NAME --region REGION [--lat X --lon Y] [--timezone TZ]
    carwash-cloud token create --db URL --site SITE [--expires-in 24h]
    carwash-cloud serve --db URL --listen HOST:PORT

Exit codes: 0 success, 1 runtime failure (database unreachable, not initialised), 2 usage
error (bad flag or value, unknown site), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, Final

from fleet_common.cli import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Commands,
    apply_logging,
    base_parser,
)

PROG: Final = "carwash-cloud"
DEFAULT_LISTEN: Final = "127.0.0.1:8090"


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        required=True,
        metavar="URL",
        help="sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
    )


def _org(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org",
        metavar="NAME",
        help="the organisation (needed only when the database holds several)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(PROG, "The cloud service of a car-wash chain.")
    commands = Commands(parser, dest="command", required=True, metavar="COMMAND")

    init = commands.add("init", help="create or migrate the database; add the organisation")
    _db(init)
    init.add_argument("--org", required=True, metavar="NAME", help="the organisation's name")

    user = commands.add("user", help="people who log in to the cloud")
    user_commands = Commands(user, dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add("add", help="add a user (password read from stdin)")
    _db(add)
    _org(add)
    add.add_argument("--email", required=True)
    add.add_argument("--role", required=True, choices=("admin", "operator", "viewer"))
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--site", metavar="SITE", help="bind the role to one site (id or name)")
    scope.add_argument("--region", metavar="REGION", help="bind the role to one region")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of stdin",
    )
    passwd = user_commands.add("passwd", help="set a new password (ends the user's sessions)")
    _db(passwd)
    passwd.add_argument("--email", required=True)
    passwd.add_argument("--password-stdin", action="store_true", required=True)
    disable = user_commands.add("disable", help="stop a user from logging in")
    _db(disable)
    disable.add_argument("--email", required=True)
    listing = user_commands.add("list", help="list users (tab-separated)")
    _db(listing)

    site = commands.add("site", help="sites")
    site_commands = Commands(site, dest="site_command", required=True, metavar="ACTION")
    site_add = site_commands.add("add", help="add a site (prints its id)")
    _db(site_add)
    _org(site_add)
    site_add.add_argument("--name", required=True)
    site_add.add_argument("--region", required=True, help="created if new")
    site_add.add_argument("--lat", type=float)
    site_add.add_argument("--lon", type=float)
    site_add.add_argument("--timezone", default="UTC", help="IANA name (default: UTC)")

    token = commands.add("token", help="enrolment tokens")
    token_commands = Commands(token, dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add("create", help="print a one-time enrolment token")
    _db(create)
    _org(create)
    create.add_argument("--site", required=True, help="the site's id or name")
    create.add_argument("--expires-in", default="24h", help="e.g. 30m, 24h, 7d (default: 24h)")

    serve = commands.add("serve", help="serve the API until SIGTERM")
    _db(serve)
    serve.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to listen on (default: {DEFAULT_LISTEN}; port 0: any)",
    )
    return parser


def _password() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _run(args: argparse.Namespace) -> int:
    # Heavy imports here, not at the top: `--help` and `--version` stay instant.
    from cloud_sync import admin
    from cloud_sync.db.engine import open_database

    db = open_database(args.db)
    try:
        if args.command == "init":
            org_id, before, after = admin.init(db, args.org)
            state = "created" if before is None else "up to date" if before == after else "migrated"
            print(f"database {state} (schema {after}); organisation {args.org!r}: {org_id}")
        elif args.command == "user":
            return _user(args, db)
        elif args.command == "site":
            print(
                admin.site_add(
                    db,
                    args.name,
                    args.region,
                    lat=args.lat,
                    lon=args.lon,
                    timezone=args.timezone,
                    org=args.org,
                )
            )
        elif args.command == "token":
            print(admin.token_create(db, args.site, args.expires_in, args.org))
        elif args.command == "serve":
            from cloud_sync.server import serve
            from cloud_sync.service import Cloud

            _run_loop(serve(Cloud(db), args.listen))
        return EXIT_OK
    finally:
        db.dispose()


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where it is installed (Linux, with uvicorn[standard]): it halves the event loop's
    share of a request (bench/fleet's heartbeats); asyncio's own loop elsewhere."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows developer machines
        asyncio.run(main)
        return
    uvloop.run(main)


def _user(args: argparse.Namespace, db: object) -> int:
    from cloud_sync import admin
    from cloud_sync.db.engine import Database

    assert isinstance(db, Database)  # noqa: S101 - for the type checker
    if args.user_command == "add":
        user = admin.add_user(
            db, args.email, args.role, _password(), site=args.site, region=args.region, org=args.org
        )
        print(user.id)
    elif args.user_command == "passwd":
        admin.set_password(db, args.email, _password())
    elif args.user_command == "disable":
        admin.disable_user(db, args.email)
    else:
        for u in admin.list_users(db):
            state = "disabled" if u.disabled else "active"
            print(
                f"{u.email}\t{u.role}\t{u.scope}{':' + u.scope_id if u.scope_id else ''}\t{state}"
            )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_logging(args)
    if args.log_level != "debug":  # Alembic tells every plugin it loads at INFO
        logging.getLogger("alembic").setLevel(logging.WARNING)
    from cloud_sync.errors import CloudError, DatabaseError, UsageError

    try:
        return _run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except CloudError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        if isinstance(err, DatabaseError):
            return EXIT_FAILURE
        return EXIT_USAGE if isinstance(err, UsageError) or err.http_status < 500 else EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
