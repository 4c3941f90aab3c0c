"""Edge config from the cloud: templates, assignments, the effective config per device, and its
delivery (long-poll with the version as ETag). Rollouts are in :mod:`cloud_sync.rollouts`."""
