"""A run's lineage as OpenLineage sees it: the runtime operators' ``get_openlineage_facets_on_*``.

Only Airflow's OpenLineage provider calls this (an optional extra): nothing here is imported
otherwise. The run's input and output entities are datasets: namespace from the data store
(``s3://bucket``, ``file://host``), name the entity's path in it; a table gets the schema facet
(its Parquet file's schema when the file is local, the schema recorded when it was written
otherwise). The run facet ``digitalhubRun`` carries the run's key, state and message; a run that
failed adds OpenLineage's error message facet, with its traceback.
"""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from attrs import define

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run
    from digitalhub_provider.stores.context import Context

RUN_FACET = "digitalhubRun"
FACET_SCHEMA = "https://scc-digitalhub.github.io/airflow-provider-digitalhub/openlineage/DigitalHubRunFacet.json"


def operator_lineage(run: Run | None, ctx: Context | None, failed: bool = False) -> Any:
    """The ``OperatorLineage`` of ``run`` (empty when the task made no run)."""
    from airflow.providers.common.compat.openlineage.facet import ErrorMessageRunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    from digitalhub_provider.entities import State

    if run is None or ctx is None:
        return OperatorLineage()

    status = run.status
    facets: dict[str, Any] = {
        RUN_FACET: run_facet_class()(runKey=run.key, state=run.state, message=status.get("message"))
    }
    if failed or run.state in (State.ERROR.value, State.STOPPED.value):
        facets["errorMessage"] = ErrorMessageRunFacet(
            message=str(status.get("message") or f"the run ended {run.state}"),
            programmingLanguage="python",
            stackTrace=status.get("traceback"),
        )
    inputs = [d for key in (run.spec.get("inputs") or {}).values() if (d := _dataset(key, ctx, "input")) is not None]
    outputs = [d for key in (status.get("outputs") or {}).values() if (d := _dataset(key, ctx, "output")) is not None]
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets=facets)


@functools.cache
def run_facet_class() -> type:
    """The ``digitalhubRun`` facet's class, made once: OpenLineage's base class is imported only when
    its provider asks for lineage."""
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @define
    class DigitalHubRunFacet(RunFacet):
        """The DigitalHub run an Airflow task executed."""

        runKey: str  # OpenLineage facets name their fields in camelCase
        state: str
        message: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return FACET_SCHEMA

    return DigitalHubRunFacet


def namespace_and_name(path: str) -> tuple[str, str] | None:
    """OpenLineage's (namespace, name) of a data store path, or None for a path it cannot name."""
    parts = urlsplit(path)
    if parts.scheme in ("s3", "gs", "http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    if parts.scheme in ("", "file"):
        return f"file://{socket.gethostname()}", parts.path if parts.scheme else path
    return None


def _dataset(key: str, ctx: Context, kind: str) -> Any:
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset

    try:
        entity = ctx.crud.get_entity_by_key(key, ctx=ctx)
    except Exception:  # deleted since: lineage is told with what is left
        return None
    spec = entity.spec if isinstance(entity.spec, dict) else {}
    named = namespace_and_name(str(spec.get("path") or ""))
    if named is None:
        return None
    facets: dict[str, Any] = {}
    fields = _schema(entity, ctx) if getattr(entity, "kind", None) == "table" else None
    if fields:
        from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

        facets["schema"] = SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in fields])
    cls = InputDataset if kind == "input" else OutputDataset
    return cls(namespace=named[0], name=named[1], facets=facets)


def _schema(entity: Any, ctx: Context) -> list[tuple[str, str]]:
    """The table's columns: from its Parquet file's footer when the file is local, else as recorded."""
    path = str(entity.spec.get("path") or "")
    local = ctx.data_store(path).local_path(path) if path else None
    if local is not None and local.exists() and local.suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(local)
        stored = (schema.pandas_metadata or {}).get("index_columns") or [] if schema.metadata else []
        index = {c for c in stored if isinstance(c, str)}  # a RangeIndex is described, not stored
        return [(f.name, str(f.type)) for f in schema if f.name not in index]
    recorded = (entity.spec.get("schema") or {}).get("fields") or []
    return [(str(f.get("name")), str(f.get("type"))) for f in recorded if isinstance(f, dict)]
