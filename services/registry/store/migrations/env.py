"""Alembic environment: run on the connection ``services.registry.store.migrate`` hands in."""

from alembic import context

from services.registry.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
