"""Load example DAGs and read back what a DAG run left in Airflow's database."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

DAGS = Path(__file__).resolve().parent.parent / "dags"


def load_dag(filename: str, dags: Path = DAGS) -> Any:
    spec = importlib.util.spec_from_file_location(f"dag_{Path(filename).stem}", dags / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def load_dags(filename: str, dags: Path) -> dict[str, Any]:
    """The ``dags`` dictionary of a test-only DAG file holding several DAGs."""
    spec = importlib.util.spec_from_file_location(f"dags_{Path(filename).stem}", dags / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dags  # type: ignore[no-any-return]


def xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)).all()
        return {(r.task_id, r.key): XComModel.deserialize_value(r) for r in rows}


def task_states(dag_run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
        ).all()
        return {ti.task_id: str(ti.state) for ti in tis}
