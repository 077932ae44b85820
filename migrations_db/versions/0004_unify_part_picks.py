"""unify: parts picked from the store like tables (issues 19 + 21)

Revision ID: 0004_unify
Revises: 0003_fleet
Create Date: 2026-12-06 07:00:00

- `table_part.ready_at`: when a part that failed transiently may be picked again (by any worker);
  the retry queue of parts lived in one process's memory before.
- `ix_table_part_pick` (migration_id, state, est_mb, id): the next part is one index probe per
  part state, largest first across all parts of all tables (store.pick_part). It replaces
  ix_table_part_migration_state, its prefix (the same reason as ix_table_task_pick in 0003).
- `ix_table_part_owner` (migration_id, owner): held parts (lease renewal, dead workers' parts,
  work held elsewhere) without a scan of every part.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004_unify'
down_revision: Union[str, None] = '0003_fleet'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Adds a nullable column and indexes only: parts in flight keep their owner, lease and state.
    with op.batch_alter_table('table_part', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_table_part_pick', ['migration_id', 'state', 'est_mb', 'id'], unique=False)
        batch_op.create_index('ix_table_part_owner', ['migration_id', 'owner'], unique=False)
        batch_op.drop_index('ix_table_part_migration_state')


def downgrade() -> None:
    with op.batch_alter_table('table_part', schema=None) as batch_op:
        batch_op.create_index('ix_table_part_migration_state', ['migration_id', 'state'], unique=False)
        batch_op.drop_index('ix_table_part_owner')
        batch_op.drop_index('ix_table_part_pick')
        batch_op.drop_column('ready_at')
