"""``python -m console`` runs the ``carwash-console`` command line."""

import sys

from console.cli import main

sys.exit(main())
