"""The registry's durable store: SQLAlchemy 2 (async) over SQLite or PostgreSQL, migrated by Alembic."""
