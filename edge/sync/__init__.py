"""The edge's sync with the cloud (``carwash-cloud``): enrolment, heartbeat, outbox, config,
members.

- :mod:`~edge.sync.enroll` — ``carwash-edge enroll``: token → ``DATA_DIR/cloud.json``;
- :mod:`~edge.sync.credentials` — that file;
- :mod:`~edge.sync.client` — the device API over httpx (timeouts, key, errors translated);
- :mod:`~edge.sync.service` — :class:`SyncService`, the loops; :mod:`~edge.sync.outbox` — rows
  to batches; :mod:`~edge.sync.state`, :mod:`~edge.sync.metrics` — what it shows;
- :mod:`~edge.sync.apply`, :mod:`~edge.sync.members` — the config and members callbacks.

Importing this package loads neither the service nor httpx: the command line imports
:mod:`edge.sync.enroll` itself when it enrols.
"""
