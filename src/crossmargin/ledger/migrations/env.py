"""Alembic environment: runs on the connection that ``store.migrate`` passes in."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
