"""``carwash-cloud``: enrolment, ingest and rollouts for the whole chain.

The service (enrolment, ingest, rollups, config rollouts, webhooks) arrives with issue C1; until
then the command answers ``--help`` and ``--version`` and says so plainly when started.
"""

from __future__ import annotations

import sys

from fleet_common.cli import unbuilt_main


def main(argv: list[str] | None = None) -> int:
    return unbuilt_main(
        "carwash-cloud",
        "The cloud service of a car-wash chain.",
        "the cloud service is not built yet (issue C1); edges run on their own meanwhile",
        argv,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
