"""The shared store: SQLAlchemy models, migrations, the ledger, rating, the message queue and the outbox.

Everything a front or a worker needs goes through functions that take a Session (one transaction,
from `Database.transaction()`) and an explicit `now`, so callers compose them into one atomic unit.
"""
