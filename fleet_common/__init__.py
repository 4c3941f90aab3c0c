"""Pieces shared by the three programs: version, logging set-up, command-line conventions.

Light on purpose: it imports only the standard library so every program (and every ``wire``
module) can use it without pulling anything heavy in.
"""

from fleet_common.version import VERSION

__all__ = ["VERSION"]
