"""outbox: partial indexes of unsent rows (producer, id) and of rows marked sent (producer, sent_at)

Revision ID: 0007
Revises: 0006

The relay reads a worker's unsent rows `WHERE producer = ? AND sent_at IS NULL ... ORDER BY id LIMIT n`.
Through (producer, sent_at, id) PostgreSQL cannot take the index's order for id order (`IS NULL` is
not an equality), so it either read the producer's whole backlog and sorted it, or walked the primary
key through every other worker's rows, each round: a relay that fell behind slowed down the further
it fell (2.4 s a round at the end of a 20,000-message drain). A partial index of unsent rows on
(producer, id) is read in id order and stops after n rows, whatever the planner's statistics say.
Rows marked sent (discarded by an operator, or from before published rows were deleted) are found by
the prune through a partial index of their own.
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

UNSENT = "sent_at IS NULL"
SENT = "sent_at IS NOT NULL"


def upgrade() -> None:
    op.create_index('ix_outbox_unsent', 'outbox', ['producer', 'id'], unique=False,
                    postgresql_where=sa.text(UNSENT), sqlite_where=sa.text(UNSENT))
    op.create_index('ix_outbox_sent', 'outbox', ['producer', 'sent_at'], unique=False,
                    postgresql_where=sa.text(SENT), sqlite_where=sa.text(SENT))
    op.drop_index('ix_outbox_producer_sent_at_id', table_name='outbox')


def downgrade() -> None:
    op.create_index('ix_outbox_producer_sent_at_id', 'outbox', ['producer', 'sent_at', 'id'], unique=False)
    op.drop_index('ix_outbox_sent', table_name='outbox')
    op.drop_index('ix_outbox_unsent', table_name='outbox')
