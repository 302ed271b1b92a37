"""An index for the runs (and tasks) of one function version: the REST API lists and counts them
(``?function=python://p/f:ID``), and a count on ``function_name`` alone reads every run's row.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = ["project", "entity_type", "function_name", "function_id", "pk"]
    op.create_index("ix_dh_entities_function_version", "dh_entities", columns)


def downgrade() -> None:
    op.drop_index("ix_dh_entities_function_version", "dh_entities")
