"""Alembic environment: migrations always run on a connection the store hands in.

The store opens the connection and the transaction (taking the schema lock first), so this file
only configures the context; it never reads alembic.ini or creates an engine.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
