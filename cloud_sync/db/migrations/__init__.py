"""Alembic migrations, shipped inside the package and run by ``carwash-cloud init``."""
