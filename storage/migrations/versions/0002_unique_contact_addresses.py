"""unique contact addresses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:31:23.811781
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_account_id_email'))
        batch_op.create_index(batch_op.f('ix_contacts_account_id_email'), ['account_id', 'email'], unique=True)
        batch_op.drop_index(batch_op.f('ix_contacts_account_id_phone'))
        batch_op.create_index(batch_op.f('ix_contacts_account_id_phone'), ['account_id', 'phone'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_account_id_phone'))
        batch_op.create_index(batch_op.f('ix_contacts_account_id_phone'), ['account_id', 'phone'], unique=False)
        batch_op.drop_index(batch_op.f('ix_contacts_account_id_email'))
        batch_op.create_index(batch_op.f('ix_contacts_account_id_email'), ['account_id', 'email'], unique=False)

