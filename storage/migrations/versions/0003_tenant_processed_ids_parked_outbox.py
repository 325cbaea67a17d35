"""processed ids per account; parked outbox rows

Revision ID: 0003
Revises: 0002

- processed_messages: the primary key becomes (consumer, account_id, message_id). A command id is
  chosen by the sender, so two accounts may use the same one; before, the second account's command
  was silently taken for a replay. Existing rows get account_id '' (they were written before the
  change, when ids were global). `UnitOfWork.already_processed` also matches account '' so a replay
  of a command processed before the upgrade is still a no-op; such rows are pruned after the
  retention like any other.
- outbox: failed_at and failure, for rows the broker can never take (parked, see ADR 8).
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.String(length=64), nullable=False, server_default=''))
        batch_op.drop_constraint('pk_processed_messages', type_='primary')
        batch_op.create_primary_key('pk_processed_messages', ['consumer', 'account_id', 'message_id'])
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_at', storage.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column('failure', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_producer_failed_at'), ['producer', 'failed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_producer_failed_at'))
        batch_op.drop_column('failure')
        batch_op.drop_column('failed_at')
    with op.batch_alter_table('processed_messages', schema=None) as batch_op:
        batch_op.drop_constraint('pk_processed_messages', type_='primary')
        batch_op.create_primary_key('pk_processed_messages', ['consumer', 'message_id'])
        batch_op.drop_column('account_id')
