"""The one table every entity lives in, with the indexes listing needs.

The entity itself is kept whole as JSON in ``body``; the other columns are
copies of what queries filter and sort on. ``pk`` grows with every insert and
is the order of versions and of listings (newest first), which keeps keyset
and offset pagination on an index even with 100,000 runs.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

entities = Table(
    "dh_entities",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False),
    Column("project", String(63), nullable=False),
    Column("entity_type", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("state", String(16), nullable=True),
    Column("function_name", String(255), nullable=True),
    Column("function_id", String(64), nullable=True),
    Column("body", Text, nullable=False),
    Index("ux_dh_entities_type_id", "entity_type", "id", unique=True),
    Index("ix_dh_entities_name", "project", "entity_type", "name", "pk"),
    Index("ix_dh_entities_kind", "project", "entity_type", "kind", "pk"),
    Index("ix_dh_entities_state", "project", "entity_type", "state", "pk"),
    Index("ix_dh_entities_function", "project", "entity_type", "function_name", "pk"),
    Index("ix_dh_entities_function_version", "project", "entity_type", "function_name", "function_id", "pk"),
)
