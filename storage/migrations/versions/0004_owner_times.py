"""when a ticket's owner was set, when a conversation's owner changed (S3 vs T6 ordering)

Revision ID: 0004
Revises: 0003

An S3 command (the conversation's owner changed) can arrive after an agent changed the ticket's owner
(T6): it travels on another topic. The ticket remembers when its owner was set, the ticketing worker's
view of a conversation when its owner changed; an older conversation owner change is not applied.
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_set_at', storage.types.UtcDateTime(), nullable=True))
    with op.batch_alter_table('conversation_refs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_changed_at', storage.types.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversation_refs', schema=None) as batch_op:
        batch_op.drop_column('owner_changed_at')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('owner_set_at')
