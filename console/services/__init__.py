"""The console's Qt-free core: edge discovery, the edge HTTP client, credentials, alert rules.

Plain asyncio + httpx, tested without Qt. Only ``console/presenters`` and ``console/ui`` import
PySide6; a test proves that importing this package loads no Qt, OpenCV, PyAV, NumPy or
SQLAlchemy.
"""
