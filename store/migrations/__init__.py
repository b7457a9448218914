"""Alembic migrations of the store (script_location "store:migrations"; run by `ivrgate db upgrade`)."""
