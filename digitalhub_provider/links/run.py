"""The task's extra link to its DigitalHub run, and when a task declares it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class DigitalHubRunLink(BaseOperatorLink):
    """Points at the run in the DigitalHub console the connection names (``ui_url``). Without one the
    task declares and stores no link (the run's folder on the data store is in the task log instead:
    browsers do not open ``file://`` or ``s3://`` links from the Airflow UI)."""

    name = "DigitalHub run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "run_link", "") or "")


class RunLinks:
    """``operator_extra_links`` of the DigitalHub operators: the run link only when the task's connection
    names a console.

    Airflow 3.3.2's UI shows a task's *Extra Links* section when its serialised task declares any link, a
    link without a URL included (an empty section). A task is serialised where its DAG is parsed (the DAG
    processor, ``dag.test()``), and that reads each task's ``operator_extra_links``: this descriptor answers
    there, once per task, by asking ``names_a_console`` about the task's ``digitalhub_conn_id`` (no console:
    no link; a connection that cannot be read there: the link, in doubt). Nothing is looked up before
    (building a task costs nothing more) nor in a worker, where the task sets its links when it creates its
    run (the link only with a console URL; Airflow pushes each declared link to XCom when the task ends).

    The class (``Operator.operator_extra_links``) always declares the link: mapped tasks (``.partial()``,
    ``.expand()``) take the class's links, as do older tasks serialised before a console was named.
    """

    def __init__(self, names_a_console: Callable[[str], bool | None]) -> None:
        self.names_a_console = names_a_console
        self.declared: tuple[DigitalHubRunLink, ...] = (DigitalHubRunLink(),)
        self.key = "_run_links"

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}_of_task"

    def __get__(self, task: Any, owner: type | None = None) -> tuple[DigitalHubRunLink, ...]:
        if task is None:
            return self.declared
        links: tuple[DigitalHubRunLink, ...] | None = task.__dict__.get(self.key)
        if links is None:
            conn_id = task.__dict__.get("digitalhub_conn_id")
            if conn_id is None:  # asked before the task's own __init__ set its connection
                return self.declared
            links = () if self.names_a_console(conn_id) is False else self.declared
            task.__dict__[self.key] = links
        return links

    def __set__(self, task: Any, links: Iterable[DigitalHubRunLink]) -> None:
        task.__dict__[self.key] = tuple(links)
