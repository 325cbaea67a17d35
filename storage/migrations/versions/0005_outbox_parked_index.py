"""outbox: a partial index of parked rows instead of (producer, failed_at)

Revision ID: 0005
Revises: 0004

The relay reads a worker's unsent rows in id order, leaving out those held behind a parked row of
their key. With an index on (producer, failed_at), SQLite chose it for that read: every row of the
producer has `failed_at` NULL, sent ones included, so each round walked every sent row kept for the
hour (200 ms a round at 53,000 rows; 43 s once ANALYZE had run). The index now holds parked rows
only (`failed_at IS NOT NULL AND sent_at IS NULL`, a handful at most), keyed for the held-behind
probe (producer, topic, key, id); the unsent rows are read through (producer, sent_at, id).
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PARKED = "failed_at IS NOT NULL AND sent_at IS NULL"


def upgrade() -> None:
    op.drop_index('ix_outbox_producer_failed_at', table_name='outbox')
    op.create_index('ix_outbox_parked', 'outbox', ['producer', 'topic', 'key', 'id'], unique=False,
                    postgresql_where=sa.text(PARKED), sqlite_where=sa.text(PARKED))


def downgrade() -> None:
    op.drop_index('ix_outbox_parked', table_name='outbox')
    op.create_index('ix_outbox_producer_failed_at', 'outbox', ['producer', 'failed_at'], unique=False)
