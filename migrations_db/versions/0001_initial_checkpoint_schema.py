"""initial checkpoint schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 01:00:01.994563
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0001'
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('migration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('strategy', sa.String(length=40), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('config_fingerprint', sa.JSON(), nullable=False),
    sa.Column('phase', sa.String(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('approvals', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migration')),
    sa.UniqueConstraint('name', name=op.f('uq_migration_name'))
    )
    op.create_table('event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('migration_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('from_state', sa.String(length=60), nullable=True),
    sa.Column('to_state', sa.String(length=60), nullable=True),
    sa.Column('trigger', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['migration_id'], ['migration.id'], name=op.f('fk_event_migration_id_migration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event'))
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_migration_subject', ['migration_id', 'subject'], unique=False)

    op.create_table('remote_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('migration_id', sa.Integer(), nullable=False),
    sa.Column('action_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['migration_id'], ['migration.id'], name=op.f('fk_remote_action_migration_id_migration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remote_action')),
    sa.UniqueConstraint('migration_id', 'action_key', name=op.f('uq_remote_action_migration_id_action_key'))
    )
    op.create_table('run_lease',
    sa.Column('migration_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('pid_started', sa.String(length=40), nullable=True),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['migration_id'], ['migration.id'], name=op.f('fk_run_lease_migration_id_migration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('migration_id', name=op.f('pk_run_lease'))
    )
    op.create_table('table_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('migration_id', sa.Integer(), nullable=False),
    sa.Column('schema_name', sa.String(length=128), nullable=False),
    sa.Column('table_name', sa.String(length=128), nullable=False),
    sa.Column('size_mb', sa.BigInteger(), nullable=False),
    sa.Column('source_rows', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('staging_prefix', sa.Text(), nullable=True),
    sa.Column('manifest_url', sa.Text(), nullable=True),
    sa.Column('unload_format', sa.String(length=20), nullable=True),
    sa.Column('format_reason', sa.Text(), nullable=True),
    sa.Column('rows_unloaded', sa.BigInteger(), nullable=True),
    sa.Column('bytes_unloaded', sa.BigInteger(), nullable=True),
    sa.Column('rows_loaded', sa.BigInteger(), nullable=True),
    sa.Column('source_checksum', sa.String(length=64), nullable=True),
    sa.Column('target_checksum', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('step_timings', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['migration_id'], ['migration.id'], name=op.f('fk_table_task_migration_id_migration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_table_task')),
    sa.UniqueConstraint('migration_id', 'schema_name', 'table_name', name=op.f('uq_table_task_migration_id_schema_name_table_name'))
    )
    with op.batch_alter_table('table_task', schema=None) as batch_op:
        batch_op.create_index('ix_table_task_migration_state', ['migration_id', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('table_task', schema=None) as batch_op:
        batch_op.drop_index('ix_table_task_migration_state')

    op.drop_table('table_task')
    op.drop_table('run_lease')
    op.drop_table('remote_action')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_migration_subject')

    op.drop_table('event')
    op.drop_table('migration')
