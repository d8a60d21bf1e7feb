"""Alembic migration scripts shipped inside the package; ``fogmesh.store.migrate`` runs them."""
