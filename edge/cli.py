"""``carwash-edge``: run the edge, manage its API keys, inspect its configuration.

Exit codes: 0 ok (also after SIGTERM), 1 runtime failure, 2 usage or configuration error,
130 interrupted (Ctrl-C / SIGINT, at any moment).

A Ctrl-C is an interruption (130), never a ``KeyboardInterrupt`` traceback: while this module's
own imports load (light ones only: the standard library, ``fleet_common``, small ``edge``
modules), and inside :func:`main`, where the rest (pydantic, the config model) loads.
"""

from __future__ import annotations

import sys

try:
    import argparse
    import json
    import logging
    import textwrap
    from pathlib import Path
    from typing import TYPE_CHECKING, Any

    from edge.datadir import check_writable
    from edge.errors import ConfigError, KeyStoreError, SourceURLError
    from edge.platform_support import (
        UnsupportedPlatform,
        check_platform,
        missing_dependency_message,
    )
    from fleet_common.cli import (
        EXIT_FAILURE,
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_USAGE,
        Commands,
        apply_logging,
        base_parser,
    )
except KeyboardInterrupt:  # a Ctrl-C right at the start (the console script imports us first)
    raise SystemExit(130) from None

if TYPE_CHECKING:
    from pydantic import BaseModel

    from edge.config import EdgeConfig

log = logging.getLogger("edge")


def build_parser() -> argparse.ArgumentParser:
    from edge.keys import ROLES

    parser = base_parser("carwash-edge", "The edge service of one car-wash bay camera.")
    # Commands: the common options (--log-level, --log-json) go before or after the command.
    sub = Commands(parser, dest="command", metavar="COMMAND")

    run = sub.add("run", help="run the edge (camera, snapshot cache, HTTP API)")
    _config_option(run)
    run.add_argument("--source", help="camera URL (rtsp://, file://, synthetic://, usb://)")
    run.add_argument("--listen", help="HOST:PORT to serve on (default 127.0.0.1:8080)")
    _data_dir_option(run)
    run.add_argument("--name", help="device name shown in the console")

    keys = sub.add("keys", help="manage API keys")
    keys_sub = Commands(keys, dest="keys_command", metavar="ACTION", required=True)
    create = keys_sub.add("create", help="create a key and print it (once)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--label", default="", help="who or what the key is for")
    listing = keys_sub.add("list", help="list keys (ids and roles, never the keys)")
    revoke = keys_sub.add("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    for p in (create, listing, revoke):
        _config_option(p)
        _data_dir_option(p)

    enrol = sub.add("enroll", help="enrol with the cloud: a one-time token → this edge's key")
    enrol.add_argument("--cloud", required=True, metavar="URL", help="the cloud's base URL")
    enrol.add_argument(
        "--token", required=True, help="one-time enrolment token (carwash-cloud token create)"
    )
    enrol.add_argument("--name", help="device name (default: the config's name)")
    enrol.add_argument("--force", action="store_true", help="enrol again (a new device)")
    _config_option(enrol)
    _data_dir_option(enrol)

    check = sub.add("check-config", help="validate a config file; exit 2 if invalid")
    check.add_argument("file", type=Path)
    sub.add("print-default-config", help="print the default config as commented TOML")
    sub.add("config-schema", help="print the config's JSON schema")
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    from edge.config import DEFAULT_CONFIG_PATH

    parser.add_argument(
        "--config", type=Path, help=f"TOML config file (default: {DEFAULT_CONFIG_PATH} if present)"
    )


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="folder for keys and state")


def config_file(args: argparse.Namespace) -> Path | None:
    """The config file to read: ``--config``, else /etc/carwash/edge.toml, else the
    ``DATA_DIR/edge.toml`` the config API writes when the edge runs without a file; else none
    (defaults). Flags override whichever is read."""
    from edge.config import DEFAULT_CONFIG_PATH, LIVE_CONFIG_FILENAME, default_data_dir

    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is None:
        data_dir: Path | None = getattr(args, "data_dir", None)
        written = (data_dir or default_data_dir()) / LIVE_CONFIG_FILENAME
        path = written if written.exists() else None
    return path


def _load(args: argparse.Namespace, overrides: dict[str, object]) -> EdgeConfig:
    from edge.config import load_config

    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = str(args.data_dir)
    return load_config(config_file(args), overrides)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        apply_logging(args)
        return _dispatch(parser, args)
    except (ConfigError, SourceURLError) as err:
        print(f"carwash-edge: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyStoreError as err:
        print(f"carwash-edge: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # Ctrl-C before the server handles signals itself
        return EXIT_INTERRUPTED


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from edge.config import (
        LIVE_CONFIG_FILENAME,
        EdgeConfig,
        is_every_interface,
        load_config,
        parse_listen,
    )
    from edge.keys import KeyStore

    if args.command == "run":
        try:
            check_platform()
        except UnsupportedPlatform as err:
            print(f"carwash-edge: {err}", file=sys.stderr)
            return EXIT_USAGE
        overrides: dict[str, object] = {}
        for flag, key in (("source", "camera.source"), ("listen", "http.listen"), ("name", "name")):
            if getattr(args, flag) is not None:
                overrides[key] = getattr(args, flag)
        config = _load(args, overrides)
        if is_every_interface(parse_listen(config.http.listen)[0]):
            log.warning("listening on every interface (%s): the API is open to every network"
                        " this machine is on (plain HTTP; API keys guard it)",
                        config.http.listen)  # fmt: skip
        data_dir = config.resolved_data_dir()
        try:  # keys, store and config file live there: without it every route would be a 401
            check_writable(data_dir)
        except OSError as err:
            print(f"carwash-edge: data dir {data_dir} is not writable ({err.strerror or err})",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        try:  # the compiled dependencies load here, not at the command line's import
            from edge.runner import run
        except ImportError as err:
            print(f"carwash-edge: {missing_dependency_message(err)}", file=sys.stderr)
            return EXIT_FAILURE

        # The config API rewrites the file read, or writes DATA_DIR/edge.toml when there is none.
        path = config_file(args) or config.resolved_data_dir() / LIVE_CONFIG_FILENAME
        try:
            return run(config, path, flag_keys=tuple(overrides))
        except OSError as err:
            print(f"carwash-edge: cannot serve on {config.http.listen}: {err}", file=sys.stderr)
            return EXIT_FAILURE
    if args.command == "keys":
        store = KeyStore.in_dir(_load(args, {}).resolved_data_dir())
        if args.keys_command == "create":
            key, entry = store.create(args.role, args.label)
            print(key)
            print(f"created {entry.role} key {entry.id} in {store.path}", file=sys.stderr)
        elif args.keys_command == "list":
            for entry in store.list():
                print(f"{entry.id}  {entry.role:<8}  {entry.created_at}  {entry.label}")
        else:
            entry = store.revoke(args.key_id)
            print(f"revoked {entry.role} key {entry.id}", file=sys.stderr)
        return EXIT_OK
    if args.command == "enroll":
        return _enroll(_load(args, {}), args)
    if args.command == "check-config":
        config = load_config(args.file)
        print(f"{args.file}: valid (source {config.camera.source.split('://')[0]}://...)")
        return EXIT_OK
    if args.command == "print-default-config":
        sys.stdout.write(default_config_toml())
        return EXIT_OK
    if args.command == "config-schema":
        print(json.dumps(EdgeConfig.model_json_schema(), indent=2))
        return EXIT_OK
    parser.print_help()
    return EXIT_USAGE


def _enroll(config: EdgeConfig, args: argparse.Namespace) -> int:
    """Token → device id and key in DATA_DIR/cloud.json. Exit 2: refused, unreachable, bad URL."""
    from edge.discovery import device_id
    from edge.sync.enroll import enroll
    from edge.sync.errors import SyncError

    data_dir = config.resolved_data_dir()
    try:
        check_writable(data_dir)
        edge_id = device_id(data_dir)
    except OSError as err:
        print(f"carwash-edge: data dir {data_dir} is not writable ({err.strerror or err})",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    name = args.name if args.name is not None else config.name
    try:
        enrolled = enroll(args.cloud, args.token, data_dir, name, edge_id=edge_id, force=args.force)
    except SyncError as err:
        print(f"carwash-edge: enrolment failed: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(enrolled.device_id)
    where = data_dir / "cloud.json"
    print(f"enrolled as device {enrolled.device_id} (site {enrolled.site_id}) with"
          f" {enrolled.cloud_url}; key stored in {where}", file=sys.stderr)  # fmt: skip
    return EXIT_OK


def default_config_toml() -> str:
    """The default configuration as TOML, each key preceded by its description."""
    from edge.config import EdgeConfig

    lines = ["# carwash-edge configuration. Every key is optional; shown are the defaults.", ""]
    _emit_model(EdgeConfig.model_construct(name="bay-1"), "", lines)
    return "\n".join(lines) + "\n"


def _emit_model(model: BaseModel, section: str, lines: list[str]) -> None:
    from pydantic import BaseModel

    tables: list[tuple[str, BaseModel]] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name, None)
        if isinstance(value, BaseModel):
            tables.append((name, value))
            continue
        lines += [f"# {text}" for text in textwrap.wrap(field.description or "", 96)]
        lines.append(f"{'# ' if value is None else ''}{name} = {_toml_value(value)}")
    for name, sub in tables:
        full = f"{section}.{name}" if section else name
        lines += ["", f"[{full}]"]
        _emit_model(sub, full, lines)


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):  # e.g. locks.boards (empty by default), plates.roi
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
