"""Persistence: SQLAlchemy 2 (async) tables, Alembic migrations, the unit of work and the outbox."""
