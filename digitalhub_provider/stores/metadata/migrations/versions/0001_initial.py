"""Initial schema: the entities table and its indexes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dh_entities",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("entity_type", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("function_name", sa.String(255), nullable=True),
        sa.Column("function_id", sa.String(64), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ux_dh_entities_type_id", "dh_entities", ["entity_type", "id"], unique=True)
    op.create_index("ix_dh_entities_name", "dh_entities", ["project", "entity_type", "name", "pk"])
    op.create_index("ix_dh_entities_kind", "dh_entities", ["project", "entity_type", "kind", "pk"])
    op.create_index("ix_dh_entities_state", "dh_entities", ["project", "entity_type", "state", "pk"])
    op.create_index("ix_dh_entities_function", "dh_entities", ["project", "entity_type", "function_name", "pk"])


def downgrade() -> None:
    op.drop_table("dh_entities")
