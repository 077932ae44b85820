"""fleet: run workers, a table's retry time, and the indexes the picks and status reads need

Revision ID: 0003_fleet
Revises: 0002_parts
Create Date: 2026-12-06 06:00:00

- `run_worker`: one row per `migrator run --worker` process (and the leader), each with its own
  heartbeat, so a fleet view can say who works and a dead worker's claims can be handed back.
- `table_task.ready_at`: when a table that failed transiently may be tried again in this pass
  (the pick reads it; before, a retry queue lived in one process's memory).
- `ix_table_task_pick` (migration_id, state, size_mb, id): the next table is one index probe per
  state, not a scan of every table (it replaces ix_table_task_migration_state, its prefix);
  `ix_table_task_owner` finds claimed tables without a scan.
- `ix_event_migration_trigger` (migration_id, trigger, id): status's newest-event-of-a-kind reads;
  `ix_event_migration_id` (migration_id, id): the live panel's "anything new since I looked?".
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003_fleet'
down_revision: Union[str, None] = '0002_parts'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('run_worker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('migration_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['migration_id'], ['migration.id'], name=op.f('fk_run_worker_migration_id_migration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_worker')),
    sa.UniqueConstraint('migration_id', 'holder', name=op.f('uq_run_worker_migration_id_holder'))
    )
    with op.batch_alter_table('table_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_table_task_pick', ['migration_id', 'state', 'size_mb', 'id'], unique=False)
        batch_op.create_index('ix_table_task_owner', ['migration_id', 'owner'], unique=False)
        # Its prefix (migration_id, state) is the pick index's: without statistics (a catalogue
        # just added) PostgreSQL chose it and sorted every table a pick.
        batch_op.drop_index('ix_table_task_migration_state')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_migration_trigger', ['migration_id', 'trigger', 'id'], unique=False)
        batch_op.create_index('ix_event_migration_id', ['migration_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_migration_id')
        batch_op.drop_index('ix_event_migration_trigger')
    with op.batch_alter_table('table_task', schema=None) as batch_op:
        batch_op.create_index('ix_table_task_migration_state', ['migration_id', 'state'], unique=False)
        batch_op.drop_index('ix_table_task_owner')
        batch_op.drop_index('ix_table_task_pick')
        batch_op.drop_column('ready_at')
    op.drop_table('run_worker')
