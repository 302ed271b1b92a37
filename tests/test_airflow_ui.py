"""What a user sees in Airflow 3.3.2's UI: the ``digitalhub`` connection form (as the API server gives it to
the UI), what a saved connection holds, the task's extra link, and the task log of a run's end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import load_dags, task_states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db")
TEST_DAGS = Path(__file__).parent / "dags"
STANDARD_FIELDS = ("description", "host", "schema", "port", "login", "password")


def _fields() -> dict[str, dict[str, Any]]:
    from digitalhub_provider.hooks.fields import CONN_FIELDS

    return CONN_FIELDS


# -- the connection form --------------------------------------------------------------------------------
def test_the_form_groups_its_fields_in_order() -> None:
    from digitalhub_provider.hooks import fields as f

    sections = [field["schema"]["section"] for field in _fields().values()]
    runs_of_one_section = [s for i, s in enumerate(sections) if i == 0 or s != sections[i - 1]]
    assert runs_of_one_section == list(f.SECTIONS)  # each section once, its fields together, in this order
    groups = {s: [k for k, field in _fields().items() if field["schema"]["section"] == s] for s in f.SECTIONS}
    assert groups[f.STORES] == ["metadata_url", "metadata_password", "data_url"]
    assert groups[f.S3] == ["s3_endpoint_url", "s3_region"]
    assert groups[f.RUNS] == ["launcher", "in_process", "ui_url"]
    assert {"cluster_context", "startup_timeout_seconds", "gpu_resource", "pod_operator_kwargs"} <= set(
        groups[f.KUBERNETES]
    )
    assert all(k.startswith("kfp_") for k in groups[f.KFP]) and all(k.startswith("mlrun_") for k in groups[f.MLRUN])


def test_every_field_says_what_it_is_and_what_empty_means() -> None:
    from digitalhub_provider.hooks.fields import UI_FIELD_BEHAVIOUR

    for key, field in _fields().items():
        assert field["label"] and field["schema"]["section"], key
        assert re.search(r"\bEmpty: \S", field["description"]), key
        assert "null" in field["schema"]["type"], key  # optional: the form does not require it
        assert "default" not in field["schema"], key  # the form would store it as if chosen
    shown = [f for f in STANDARD_FIELDS if f not in UI_FIELD_BEHAVIOUR["hidden-fields"]]
    assert shown == ["description", "login", "password"]
    for name in shown:
        assert UI_FIELD_BEHAVIOUR["placeholders"][name], name
    assert set(UI_FIELD_BEHAVIOUR["placeholders"]) <= set(STANDARD_FIELDS)  # Airflow shows no other placeholder


def test_the_form_and_the_typed_extras_know_the_same_keys() -> None:
    from digitalhub_provider.connection_extras import ConnectionExtras

    assert set(_fields()) == set(ConnectionExtras.keys())


def test_each_field_gives_what_the_typed_extras_read() -> None:
    from digitalhub_provider.connection_extras import (
        PARSERS,
        SECRET_KEYS,
        ConnectionExtras,
        parse_int,
        parse_object,
        parse_str,
    )

    for key, field in _fields().items():
        schema = field["schema"]
        types = set(schema["type"]) - {"null"}
        parser = PARSERS.get(key, parse_str)
        assert "boolean" not in types, key  # a switch cannot go back to unset: tri-state keys are drop-downs
        assert (types == {"integer"}) == (parser is parse_int), key
        assert (types == {"object"}) == (parser is parse_object), key
        assert (schema.get("format") == "password") == (key in SECRET_KEYS), key
        for value in schema.get("enum", []):
            ConnectionExtras.from_dict({key: value})  # every option reads
            assert value is None or str(value) in schema["values_display"], (key, value)
        if "enum" in schema:
            assert schema["values_display"]["null"].startswith("(empty)"), key
    assert ConnectionExtras.from_dict({"in_process": "false", "in_cluster": "true"}).in_process is False


def test_the_api_server_gives_the_ui_this_form() -> None:
    """What ``GET /ui/connections/hook_meta`` returns for ``digitalhub``: the fields in order with their group,
    help and no value, the standard fields' placeholders and hidden fields."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "digitalhub"]
    extra = dict(meta.extra_fields or {})
    assert list(extra) == list(_fields())
    for key, spec in extra.items():
        assert spec["value"] is None, key  # what the form starts from, and stores when left empty
        assert spec["description"] == _fields()[key]["description"]
        assert spec["schema"]["title"] == _fields()[key]["label"]
        assert spec["schema"]["section"] == _fields()[key]["schema"]["section"]
    standard = meta.standard_fields
    assert standard is not None and standard.login is not None and standard.password is not None
    assert standard.login.title == "S3 access key id" and (standard.login.placeholder or "").startswith("empty:")
    assert (standard.password.placeholder or "").startswith("empty:")
    assert all(getattr(standard, f) is not None and getattr(standard, f).hidden for f in ("host", "port"))
    assert standard.url_schema is not None and standard.url_schema.hidden


# -- what a saved connection holds ----------------------------------------------------------------------------
SET = {"data_url": "s3://bucket/data", "s3_endpoint_url": "http://minio:9000", "launcher": "kubernetes"}


def test_a_saved_connection_holds_only_what_was_set() -> None:
    """Saved through the REST API with the keys set, the stored extra holds those keys only. Airflow 3.3.2's form
    writes every field (``null`` when left empty, which its edit form needs to show the field again): with no
    field defaults, its non-null keys are the ones set, and both read the same."""
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionBody
    from airflow.api_fastapi.core_api.routes.public.connections import post_connection
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    from digitalhub_provider.connection_extras import ConnectionExtras

    body = ConnectionBody(connection_id="dh_saved", conn_type="digitalhub", extra=json.dumps(SET))
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == "dh_saved"))
        post_connection(body, session)  # what POST /api/v2/connections runs
    with create_session() as session:
        saved = session.scalar(select(Connection).where(Connection.conn_id == "dh_saved"))
        stored = json.loads(saved.extra)  # as stored (Airflow encrypts the column; the property decrypts it)
        session.execute(delete(Connection).where(Connection.conn_id == "dh_saved"))
    assert stored == SET

    from_the_form = {key: SET.get(key) for key in _fields()}  # what the UI's form sends for the same input
    assert {k for k, v in from_the_form.items() if v is not None} == set(SET)
    assert ConnectionExtras.from_dict(from_the_form) == ConnectionExtras.from_dict(stored)


# -- the extra link ----------------------------------------------------------------------------------------------
@pytest.fixture
def console_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dh_console`` names a console, ``dh_no_console`` none, ``digitalhub_default`` is not defined."""
    conn = {"conn_type": "digitalhub", "extra": {"ui_url": "https://console.example/"}}
    monkeypatch.setenv("AIRFLOW_CONN_DH_CONSOLE", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_DH_NO_CONSOLE", json.dumps({"conn_type": "digitalhub", "extra": {"ui_url": None}}))
    monkeypatch.delenv("AIRFLOW_CONN_DIGITALHUB_DEFAULT", raising=False)


def _links_shown(dag: Any) -> dict[str, list[str]]:
    """Each task's extra links as the API server (``GET .../taskInstances/{task}/links``) finds them."""
    from airflow.serialization.serialized_objects import DagSerialization

    served = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    return {task.task_id: sorted(task.extra_links) for task in served.tasks}


def test_every_task_declares_its_run_link(console_connections: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With or without a console named by the connection, the run has a page (the plugin's console
    otherwise): every task declares the link, and no connection is read for it where the DAG is
    serialised (a process that may not read connections serialises it the same)."""
    from airflow.sdk import BaseHook

    def refused(conn_id: str) -> Any:
        raise PermissionError("this process may not read connections")

    monkeypatch.setattr(BaseHook, "get_connection", staticmethod(refused))
    dag = load_dags("ui_conventions.py", TEST_DAGS)["extra_links"]
    assert _links_shown(dag) == {
        "default_conn": ["DigitalHub run"],
        "with_console": ["DigitalHub run"],
        "without_console": ["DigitalHub run"],
        "mapped": ["DigitalHub run"],  # a mapped task takes its class's links
    }


def test_the_link_follows_the_connection_when_the_task_runs(console_connections: None) -> None:
    """The connection's console when it names one, else the run's page in the console the plugin serves
    (Airflow's ``[api] base_url`` in front, a path on the UI's origin without one)."""
    from digitalhub_provider.links.run import _airflow_base_url, console_run_url

    dag = load_dags("ui_conventions.py", TEST_DAGS)["extra_links"]
    dr = dag.test()
    assert str(dr.state) == "success", task_states(dr)
    x = xcoms("ui_extra_links", dr.run_id)
    run_id = x[("with_console", "return_value")]["run_id"]
    assert x[("with_console", "_link_DigitalHubRunLink")] == f"https://console.example/#/projects/demo/runs/{run_id}"
    base = _airflow_base_url()
    for task_id in ("default_conn", "without_console"):
        other = x[(task_id, "return_value")]["run_id"]
        expected = f"{(base or '').rstrip('/')}/digitalhub/console/#/projects/demo/runs/{other}"
        assert x[(task_id, "_link_DigitalHubRunLink")] == expected == console_run_url("demo", other, base)


def test_the_console_url_of_a_run() -> None:
    from digitalhub_provider.links.run import console_run_url

    assert console_run_url("demo", "r1") == "/digitalhub/console/#/projects/demo/runs/r1"
    assert (
        console_run_url("demo", "r1", "http://airflow:8080/")
        == "http://airflow:8080/digitalhub/console/#/projects/demo/runs/r1"
    )
    assert (
        console_run_url("a b", "r/1", "https://x/af") == "https://x/af/digitalhub/console/#/projects/a%20b/runs/r%2F1"
    )


# -- the task log of a run's end ------------------------------------------------------------------------------
@pytest.mark.parametrize("launcher", ["in_process", "subprocess"])
def test_a_failed_runs_log_ends_with_its_traceback_and_one_line(
    launcher: str, capfd: pytest.CaptureFixture[str]
) -> None:
    dr = load_dags("ui_conventions.py", TEST_DAGS)[f"failing_{launcher}"].test()
    out = capfd.readouterr()
    log = out.out + out.err
    assert str(dr.state) == "failed"
    (run,) = dh.list_runs("demo")
    summary = (
        f"DigitalHub run {run.key} ended ERROR: handler 'h' raised ValueError: the handler broke on purpose after "
        "3 rows; outputs: none; results: none"
    )
    traceback_at = log.index(f"Traceback of DigitalHub run {run.key}:")
    handler_frames = log.index('raise ValueError(f"the handler broke on purpose after {rows} rows")', traceback_at)
    summary_at = log.index(summary, handler_frames)
    assert log.index("helper(rows)", traceback_at) < handler_frames  # the handler's own frames, in order
    assert log.index("ValueError: the handler broke on purpose after 3 rows", handler_frames) < summary_at
    after = log[summary_at + len(summary) :]
    # what follows is Airflow's record of the task's exception: the same line, none of the run's frames, no chain
    assert "Task failed with exception" in after and summary in after
    assert "helper(rows)" not in after and "runtimes/python/job.py" not in after
    assert "During handling of the above exception" not in after
    assert "The above exception was the direct cause" not in after


def test_a_completed_runs_log_ends_with_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    dr = load_dags("ui_conventions.py", TEST_DAGS)["succeeding"].test()
    out = capfd.readouterr()
    assert str(dr.state) == "success", task_states(dr)
    (run,) = dh.list_runs("demo")
    assert (
        f"DigitalHub run {run.key} ended COMPLETED; outputs: none; results: doubled=6, word='done'" in out.out + out.err
    )
