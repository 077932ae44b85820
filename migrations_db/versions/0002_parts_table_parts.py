"""table parts: one row per part of a big table (issue 19)

Revision ID: 0002_parts
Revises: 0001
Create Date: 2026-12-06 06:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002_parts'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A new table only: tables in flight keep their rows and states; a table already copying is
    # not split (its parts are planned only when its unload starts).
    op.create_table('table_part',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('migration_id', sa.Integer(), nullable=False),
    sa.Column('table_id', sa.Integer(), nullable=False),
    sa.Column('part_no', sa.Integer(), nullable=False),
    sa.Column('parts_total', sa.Integer(), nullable=False),
    sa.Column('part_column', sa.String(length=128), nullable=True),
    sa.Column('lower_bound', sa.Text(), nullable=True),
    sa.Column('upper_bound', sa.Text(), nullable=True),
    sa.Column('est_rows', sa.BigInteger(), nullable=False),
    sa.Column('est_mb', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('staging_prefix', sa.Text(), nullable=True),
    sa.Column('manifest_url', sa.Text(), nullable=True),
    sa.Column('rows_unloaded', sa.BigInteger(), nullable=True),
    sa.Column('bytes_unloaded', sa.BigInteger(), nullable=True),
    sa.Column('files_unloaded', sa.Integer(), nullable=True),
    sa.Column('rows_loaded', sa.BigInteger(), nullable=True),
    sa.Column('source_checksum', sa.String(length=64), nullable=True),
    sa.Column('target_checksum', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['migration_id'], ['migration.id'], name=op.f('fk_table_part_migration_id_migration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['table_id'], ['table_task.id'], name=op.f('fk_table_part_table_id_table_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_table_part')),
    sa.UniqueConstraint('table_id', 'part_no', name=op.f('uq_table_part_table_id_part_no'))
    )
    op.create_index('ix_table_part_migration_state', 'table_part', ['migration_id', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_table_part_migration_state', table_name='table_part')
    op.drop_table('table_part')
