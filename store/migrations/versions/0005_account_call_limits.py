"""Per-account voice call limits, enforced by the voice worker's claim over every node: an owner's
calls in flight together and attempts per second (NULL: the node's dialer settings), and the state of its
calls-per-second token bucket.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("max_concurrent_calls", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("calls_per_second", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dial_tokens", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dial_tokens_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("dial_tokens_at")
        batch.drop_column("dial_tokens")
        batch.drop_column("calls_per_second")
        batch.drop_column("max_concurrent_calls")
