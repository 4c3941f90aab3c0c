"""``python -m cloud_sync`` runs the ``carwash-cloud`` command line."""

import sys

from cloud_sync.cli import main

sys.exit(main())
