"""Alembic environment: runs on the connection (and in the schema) that the store passes in."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, version_table_schema=context.config.attributes.get("schema")
)
with context.begin_transaction():
    context.run_migrations()
