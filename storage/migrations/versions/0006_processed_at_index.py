"""processed_messages: an index on processed_at

Revision ID: 0006
Revises: 0005

Every 1,000 rounds the relay deletes its consumers' processed ids older than 35 days. Without an
index on `processed_at` that delete read the whole table each time, in the relay's loop; it now reads
the expired rows only.

Building it blocks writes to `processed_messages` (processed commands) while it runs. On a large
table, create it first without blocking, then migrate (this revision then finds it there):
    CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_processed_messages_processed_at ON processed_messages (processed_at);
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_processed_messages_processed_at', 'processed_messages', ['processed_at'], unique=False,
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_processed_messages_processed_at', table_name='processed_messages')
