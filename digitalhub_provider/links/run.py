"""The task's extra link to its DigitalHub run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class DigitalHubRunLink(BaseOperatorLink):
    """Points at the run in the DigitalHub console when the connection names one (``ui_url``),
    else at the run's folder on the data store (RunSpec, RunResult and logs)."""

    name = "DigitalHub run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "run_link", "") or "")
