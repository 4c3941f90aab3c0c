"""``carwash-console``: the site manager's desktop program.

The window itself (live wall, plate feed, carts, device pages) arrives with issue G1; until
then the command answers ``--help`` and ``--version`` and says so plainly when started.
"""

from __future__ import annotations

import sys

from fleet_common.cli import unbuilt_main


def main(argv: list[str] | None = None) -> int:
    return unbuilt_main(
        "carwash-console",
        "The site manager's live wall of car-wash bays.",
        "the desktop window is not built yet (issue G1); meanwhile watch a bay at"
        " http://EDGE:8080/api/stream.mjpeg",
        argv,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
