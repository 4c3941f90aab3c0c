"""The one version string of the ``carwash-fleet`` distribution."""

VERSION = "0.1.0"
