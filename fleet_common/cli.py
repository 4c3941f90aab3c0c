"""Command-line conventions every program follows: ``--version``, ``--log-level``, ``--log-json``.

Exit codes (documented in the README):
    0 success, 1 runtime failure, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

from fleet_common.logs import LEVELS, setup_logging
from fleet_common.version import VERSION

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def _add_logging_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    level: Any = argparse.SUPPRESS if suppress else "info"
    json_lines: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--log-level", choices=LEVELS, default=level, help="log threshold (default: info)"
    )
    parser.add_argument(
        "--log-json", action="store_true", default=json_lines,
        help="write logs as JSON lines (for log shippers)",
    )  # fmt: skip


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the options every program shares."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {VERSION}")
    _add_logging_options(parser, suppress=False)
    return parser


def common_options() -> argparse.ArgumentParser:
    """The shared options for a subcommand's parser (``parents=[common_options()]``), so that
    ``prog run --log-level debug`` works as well as ``prog --log-level debug run``.

    Their default is ``SUPPRESS``: a subcommand that does not repeat them leaves the values
    given before it (or :func:`base_parser`'s defaults) alone.
    """
    parent = argparse.ArgumentParser(add_help=False)
    _add_logging_options(parent, suppress=True)
    return parent


class Commands:
    """The subcommands of a parser; each one also takes the common options after its name."""

    def __init__(self, parser: argparse.ArgumentParser, **kwargs: Any) -> None:
        self._sub: argparse._SubParsersAction[argparse.ArgumentParser]
        self._sub = parser.add_subparsers(**kwargs)
        self._common = common_options()

    def add(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return self._sub.add_parser(name, parents=[self._common], **kwargs)


def apply_logging(args: argparse.Namespace) -> None:
    setup_logging(args.log_level, json_lines=args.log_json)


def unbuilt_main(prog: str, description: str, notice: str, argv: list[str] | None) -> int:
    """Entry point of a program whose main part is not built yet: the common options work
    (``--help``, ``--version``), and starting it says so plainly instead of pretending."""
    args = base_parser(prog, description).parse_args(argv)
    apply_logging(args)
    print(f"{prog}: {notice}", file=sys.stderr)
    return EXIT_FAILURE
