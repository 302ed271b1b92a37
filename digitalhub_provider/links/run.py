"""The task's extra link to its DigitalHub run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class DigitalHubRunLink(BaseOperatorLink):
    """Points at the run in the DigitalHub console the connection names (``ui_url``). Without one the
    task stores no link (the run's folder on the data store is in the task log instead: browsers
    do not open ``file://`` or ``s3://`` links from the Airflow UI)."""

    name = "DigitalHub run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "run_link", "") or "")
