"""routing table overrides audit

Revision ID: 40650510690e
Revises: 8986acdff76a
Create Date: 2026-12-04 20:50:04.723864
"""
from datetime import datetime, timezone
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import orchestrator.kit.db


revision: str = '40650510690e'
down_revision: Union[str, None] = '8986acdff76a'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=40), nullable=True),
    sa.Column('at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)

    op.create_table('overrides',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('scope_region', sa.String(length=8), nullable=True),
    sa.Column('scope_country', sa.String(length=2), nullable=True),
    sa.Column('scope_currency', sa.String(length=3), nullable=True),
    sa.Column('scope_merchant_id', sa.String(length=40), nullable=True),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('fallback', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('expires_at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_overrides'))
    )
    op.create_table('routing_table',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=False),
    sa.Column('status_page', sa.String(length=32), nullable=False),
    sa.Column('status_checked_at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('error_rate', sa.Float(), nullable=True),
    sa.Column('p99_latency_ms', sa.Float(), nullable=True),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('recovering_since', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider', 'region', name=op.f('pk_routing_table'))
    )
    op.create_table('routing_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', orchestrator.kit.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_version'))
    )
    op.bulk_insert(sa.table('routing_version', sa.column('id', sa.Integer), sa.column('version', sa.BigInteger),
                            sa.column('changed_at', sa.DateTime(timezone=True))),
                   [{'id': 1, 'version': 0, 'changed_at': datetime.now(timezone.utc)}])
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_payment_attempts_started_at', ['started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_attempts_started_at')

    op.drop_table('routing_version')
    op.drop_table('routing_table')
    op.drop_table('overrides')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_at')

    op.drop_table('audit_log')
