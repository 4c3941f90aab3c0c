"""Ingest: the edges' outbox batches, stored once each, with the hourly rollups kept up to date."""
