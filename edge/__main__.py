"""``python -m edge`` runs the ``carwash-edge`` command line."""

import sys

from edge.cli import main

sys.exit(main())
