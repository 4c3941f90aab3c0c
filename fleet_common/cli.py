"""Command-line conventions every program follows: ``--version``, ``--log-level``, ``--log-json``.

Exit codes (documented in the README):
    0 success, 1 runtime failure, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from fleet_common.logs import LEVELS, setup_logging
from fleet_common.version import VERSION

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the options every program shares."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {VERSION}")
    parser.add_argument(
        "--log-level", choices=LEVELS, default="info", help="log threshold (default: info)"
    )
    parser.add_argument(
        "--log-json", action="store_true", help="write logs as JSON lines (for log shippers)"
    )
    return parser


def apply_logging(args: argparse.Namespace) -> None:
    setup_logging(args.log_level, json_lines=args.log_json)


def unbuilt_main(prog: str, description: str, notice: str, argv: list[str] | None) -> int:
    """Entry point of a program whose main part is not built yet: the common options work
    (``--help``, ``--version``), and starting it says so plainly instead of pretending."""
    args = base_parser(prog, description).parse_args(argv)
    apply_logging(args)
    print(f"{prog}: {notice}", file=sys.stderr)
    return EXIT_FAILURE
