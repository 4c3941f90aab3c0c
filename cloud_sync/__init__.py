"""carwash-cloud: enrolment, ingest, rollups and config rollouts for the whole chain."""

from fleet_common.version import VERSION as __version__

__all__ = ["__version__"]
