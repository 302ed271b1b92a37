"""The task's extra link to its DigitalHub run, and when a task declares it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

# Where the provider's plugin serves the console in Airflow's api-server (digitalhub_provider/api/plugin.py;
# not imported from there: this module loads in every task process).
CONSOLE_PATH = "/digitalhub/console/"


def console_run_url(project: str, run_id: str, base_url: str | None = None) -> str:
    """The run's page in the console the plugin serves: ``base_url`` (Airflow's ``[api] base_url``) in
    front, or a path on the same origin as the Airflow UI without one."""
    from urllib.parse import quote

    prefix = (base_url or "").rstrip("/")
    return f"{prefix}{CONSOLE_PATH}#/projects/{quote(project, safe='')}/runs/{quote(run_id, safe='')}"


def _airflow_base_url() -> str | None:
    try:
        from airflow.sdk import conf

        return conf.get("api", "base_url", fallback=None) or None
    except Exception:  # no configuration to read: a path on the same origin
        return None


class DigitalHubRunLink(BaseOperatorLink):
    """Points at the run in the DigitalHub console: the one the connection names (``ui_url``), else the
    console the provider's plugin serves inside Airflow (same origin)."""

    name = "DigitalHub run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        link = str(getattr(operator, "run_link", "") or "")
        if link:
            return link
        run = getattr(operator, "_run", None)
        if run is None:  # the task created no run (it failed before): no link
            return ""
        return console_run_url(str(run.project), str(run.id), _airflow_base_url())


class RunLinks:
    """``operator_extra_links`` of the DigitalHub operators: the run link, declared on every task.

    Every run has a page in a console: the one the task's connection names (``ui_url``), or the one the
    provider's Airflow plugin serves on the api-server.

    In a worker the task sets its links when it starts (none until it has a run: Airflow pushes each declared
    link to XCom when the task ends); a task that has a run answers with the run link whatever was set.
    """

    def __init__(self) -> None:
        self.declared: tuple[DigitalHubRunLink, ...] = (DigitalHubRunLink(),)
        self.key = "_run_links"

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}_of_task"

    def __get__(self, task: Any, owner: type | None = None) -> tuple[DigitalHubRunLink, ...]:
        if task is None:
            return self.declared
        links: tuple[DigitalHubRunLink, ...] | None = task.__dict__.get(self.key)
        if links is None or (not links and task.__dict__.get("_run") is not None):
            return self.declared
        return links

    def __set__(self, task: Any, links: Iterable[DigitalHubRunLink]) -> None:
        task.__dict__[self.key] = tuple(links)
