"""The edge's HTTP API: :func:`create_app` builds it for one :class:`edge.service.Edge`."""

from edge.api.app import create_app

__all__ = ["create_app"]
