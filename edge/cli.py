"""``carwash-edge``: run the edge, manage its API keys, inspect its configuration.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.config import (
    DEFAULT_CONFIG_PATH,
    LIVE_CONFIG_FILENAME,
    EdgeConfig,
    default_data_dir,
    load_config,
)
from edge.errors import ConfigError, KeyStoreError, SourceURLError
from edge.keys import ROLES, KeyStore
from edge.platform_support import UnsupportedPlatform, check_platform, missing_dependency_message
from fleet_common.cli import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    apply_logging,
    base_parser,
)

log = logging.getLogger("edge")


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser("carwash-edge", "The edge service of one car-wash bay camera.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the edge (camera, snapshot cache, HTTP API)")
    _config_option(run)
    run.add_argument("--source", help="camera URL (rtsp://, file://, synthetic://, usb://)")
    run.add_argument("--listen", help="HOST:PORT to serve on (default 127.0.0.1:8080)")
    _data_dir_option(run)
    run.add_argument("--name", help="device name shown in the console")

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--label", default="", help="who or what the key is for")
    listing = keys_sub.add_parser("list", help="list keys (ids and roles, never the keys)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    for p in (create, listing, revoke):
        _config_option(p)
        _data_dir_option(p)

    check = sub.add_parser("check-config", help="validate a config file; exit 2 if invalid")
    check.add_argument("file", type=Path)
    sub.add_parser("print-default-config", help="print the default config as commented TOML")
    sub.add_parser("config-schema", help="print the config's JSON schema")
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help=f"TOML config file (default: {DEFAULT_CONFIG_PATH} if present)"
    )


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="folder for keys and state")


def config_file(args: argparse.Namespace) -> Path | None:
    """The config file to read: ``--config``, else /etc/carwash/edge.toml, else the
    ``DATA_DIR/edge.toml`` the config API writes when the edge runs without a file; else none
    (defaults). Flags override whichever is read."""
    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is None:
        data_dir: Path | None = getattr(args, "data_dir", None)
        written = (data_dir or default_data_dir()) / LIVE_CONFIG_FILENAME
        path = written if written.exists() else None
    return path


def _load(args: argparse.Namespace, overrides: dict[str, object]) -> EdgeConfig:
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = str(args.data_dir)
    return load_config(config_file(args), overrides)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_logging(args)
    try:
        return _dispatch(parser, args)
    except (ConfigError, SourceURLError) as err:
        print(f"carwash-edge: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyStoreError as err:
        print(f"carwash-edge: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
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


def default_config_toml() -> str:
    """The default configuration as TOML, each key preceded by its description."""
    lines = ["# carwash-edge configuration. Every key is optional; shown are the defaults.", ""]
    _emit_model(EdgeConfig.model_construct(name="bay-1"), "", lines)
    return "\n".join(lines) + "\n"


def _emit_model(model: BaseModel, section: str, lines: list[str]) -> None:
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
