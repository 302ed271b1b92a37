"""Run outputs as Airflow Assets: the URI scheme, the events a run's outputs emit, and the key of the
version that triggered a DAG run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pytest

import digitalhub_provider as dh
from digitalhub_provider.assets import asset_uri, parse_asset_uri, sanitize_uri, triggering_key
from tests.test_e2e_scheduler import csv_url  # noqa: F401 - a fixture

WORLD_CITIES = "digitalhub://demo/dataitem/world-cities"


def test_entity_names_become_one_canonical_uri() -> None:
    assert asset_uri("demo", "dataitem", "world-cities") == "digitalhub://demo/dataitem/world-cities"
    plus = asset_uri("demo", "model", "clf+v2")
    assert plus == "digitalhub://demo/model/clf%2Bv2"  # '+' would read as a space in a query: encoded
    assert parse_asset_uri(plus) == ("demo", "model", "clf+v2")
    assert urlunsplit(sanitize_uri(urlsplit("digitalhub://demo/model/clf+v2"))) == plus


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("digitalhub://demo/run/r1", "'run' is not one of dataitem, artifact, model"),
        ("digitalhub://demo/dataitem", "is not a DigitalHub asset URI"),
        ("digitalhub:///dataitem/x", "is not a DigitalHub asset URI"),
        ("digitalhub://demo/dataitem/x/y", "is not a DigitalHub asset URI"),
        ("digitalhub://demo/dataitem/x?v=2", "has no query or fragment"),
    ],
)
def test_a_uri_that_names_no_entity_is_refused(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sanitize_uri(urlsplit(uri))
    with pytest.raises(ValueError, match=message):
        triggering_key(uri)


def test_airflow_normalizes_the_scheme_with_the_providers_handler() -> None:
    from airflow.sdk import Asset

    assert Asset("digitalhub://demo/model/clf+v2").uri == "digitalhub://demo/model/clf%2Bv2"
    with pytest.raises(ValueError, match="is not one of dataitem, artifact, model"):
        Asset("digitalhub://demo/task/t")


def _events(run_id: str) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """This DAG run's asset events (the session's Airflow database holds other tests' too): uri, task,
    extra, and the aliases each came through."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run_id)).all()
        return [(e.asset.uri, e.source_task_id, e.extra, [a.name for a in e.source_aliases]) for e in events]


def test_a_declared_outlet_carries_the_version_its_run_produced(airflow_db: str) -> None:
    """Under dag.test(): world_cities' download declares the world-cities Asset as its outlet, and the
    event on it (Airflow's direct path, no alias) holds the key and version id of the dataitem its
    run made, and that run's key."""
    from tests.airflow_helpers import load_dag, task_states

    dr = load_dag("world_cities.py").test()
    assert task_states(dr) == {"download": "success", "report": "success"}
    di = dh.get_dataitem("world-cities", project="demo")
    mine = [e for e in _events(dr.run_id) if e[0] == WORLD_CITIES]
    assert len(mine) == 1
    _, task, extra, via = mine[0]
    assert (task, via) == ("download", [])
    assert extra["key"] == di.key and extra["id"] == di.id and extra["output"] == "world-cities"
    assert dh.get_run(extra["run_key"]).status.get("outputs") == {"world-cities": di.key}


def test_an_undeclared_output_is_an_event_through_the_operators_alias(airflow_db: str) -> None:
    """An output no outlet names (the cached DAG's ``table``) comes through the operators' alias,
    which Airflow records with the event; the alias is the operator's only declared outlet."""
    from airflow.models.asset import AssetAliasModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.airflow_helpers import load_dag, task_states

    dr = load_dag("cached.py", Path(__file__).parent / "dags").test()
    assert task_states(dr) == {"first": "success", "second": "success"}
    table = dh.get_dataitem("table", project="demo")
    first = [e for e in _events(dr.run_id) if e[1] == "first"]
    assert [(uri, via) for uri, _, _, via in first] == [
        ("digitalhub://demo/dataitem/table", ["digitalhub-run-outputs"])
    ]
    assert first[0][2]["key"] == table.key
    with create_session() as session:
        assert "digitalhub-run-outputs" in [a.name for a in session.scalars(select(AssetAliasModel)).all()]


@pytest.mark.timeout(600)
def test_a_producer_run_triggers_the_consumer_dag_which_reads_the_version_produced(
    tmp_path: Any,
    csv_url: str,  # noqa: F811 - the fixture
) -> None:
    """Under the real scheduler (job schedule on, as in production: Airflow creates Asset-triggered runs only
    then, so world_cities' nightly run starts as soon as it is unpaused):

    - a manual world_cities run alongside the nightly one: both succeed (their events go to the declared
      outlet; through an alias, Airflow 3.3 fails one of two tasks that emit an asset through it for the
      first time at once);
    - then, all settled, one more producer run: a cities_report run reads exactly the version it made.

    Airflow may hand two events that arrive together to one consumer run, or one of them to the next
    consumer run (an event registered while the first run is created waits for the next), so the first
    phase does not count consumer runs."""
    import time

    from tests.airflow_servers import airflow_deployment
    from tests.test_e2e_scheduler import DATA, expected_report, run_to_success

    with airflow_deployment(tmp_path / "airflow", extra_env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"}) as af:
        af.wait_dag("world_cities")
        af.wait_dag("cities_report")
        assert af.api("PATCH", "dags/cities_report", json={"is_paused": False}).status_code == 200

        def runs(dag_id: str) -> list[dict[str, Any]]:
            return af.api("GET", f"dags/{dag_id}/dagRuns").json().get("dag_runs", [])

        def final(dag_id: str) -> bool:
            return all(r["state"] in ("success", "failed") for r in runs(dag_id))

        def triggering_keys(dag_run_id: str) -> list[str]:
            """The keys of the world-cities events a consumer run consumed, oldest first."""
            events = af.api("GET", f"dags/cities_report/dagRuns/{dag_run_id}/upstreamAssetEvents").json()
            mine = sorted((e for e in events["asset_events"] if e["uri"] == WORLD_CITIES), key=lambda e: e["timestamp"])
            return [e["extra"]["key"] for e in mine]

        def wait(condition: Any, what: str) -> None:
            deadline = time.monotonic() + 240
            while not condition() and time.monotonic() < deadline:
                time.sleep(1)
            assert condition(), f"{what}\n{af.diagnostics('cities_report')}"

        run_to_success(af, "world_cities", {"url": csv_url})  # alongside the nightly run
        wait(lambda: final("world_cities") and len(runs("world_cities")) >= 2, "the producers did not end")
        for producer in runs("world_cities"):
            assert producer["state"] == "success", af.diagnostics("world_cities", producer["dag_run_id"])
        wait(lambda: bool(runs("cities_report")) and final("cities_report"), "no consumer run ended")

        produced = run_to_success(af, "world_cities", {"url": csv_url})
        made = af.xcom("world_cities", produced, "download", "world-cities")
        wait(lambda: final("cities_report") and any(made in triggering_keys(r["dag_run_id"]) for r in
                                                    runs("cities_report")), f"no consumer run read {made}")  # fmt: skip
        reading = [r for r in runs("cities_report") if made in triggering_keys(r["dag_run_id"])]
        for consumer in runs("cities_report"):
            assert consumer["state"] == "success", af.diagnostics("cities_report", consumer["dag_run_id"])
            keys = triggering_keys(consumer["dag_run_id"])
            summary = af.xcom("cities_report", consumer["dag_run_id"], "report", "return_value")
            run = dh.get_run(summary["run_key"])
            assert run.spec["inputs"] == {"di": keys[-1]}  # the latest version that triggered it
            assert run.results() == expected_report(DATA / "world-cities.csv")
        assert len(reading) == 1 and triggering_keys(reading[0]["dag_run_id"])[-1] == made
    assert af.left_behind == [], af.left_behind


def test_the_triggering_key_template_skips_the_aliases_and_takes_the_latest_version() -> None:
    """Rendered as Airflow renders (strict undefined), over what a triggered run's context holds: the
    asset's events, and the alias they came through (a key without a uri)."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    import jinja2

    # newest first: Airflow gives a run's consumed events in no set order
    events = [SimpleNamespace(extra={"key": "store://demo/dataitem/table/world-cities:v2"},
                              timestamp=datetime(2026, 12, 7, 9, 0, 2, tzinfo=timezone.utc)),
              SimpleNamespace(extra={"key": "store://demo/dataitem/table/world-cities:v1"},
                              timestamp=datetime(2026, 12, 7, 9, 0, 1, tzinfo=timezone.utc))]  # fmt: skip
    alias, asset = type("Alias", (), {"name": "digitalhub-run-outputs"})(), type("Asset", (), {"uri": WORLD_CITIES})()
    context = {alias: events, asset: events}
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(triggering_key(WORLD_CITIES))
    assert template.render(triggering_asset_events=context) == "store://demo/dataitem/table/world-cities:v2"


def test_an_asset_input_reads_the_latest_version_and_is_an_inlet(airflow_db: str) -> None:
    """``inputs={"di": Asset(uri)}``: the task's inlets hold the Asset (Airflow's lineage shows it before
    any run), and the run reads the entity's latest version, recorded by key on its spec."""
    from tests.airflow_helpers import load_dag, task_states, xcoms

    dh.log_dataitem(project="demo", name="world-cities", kind="table", data=pd.DataFrame({"n": [1]}))
    latest = dh.log_dataitem(project="demo", name="world-cities", kind="table", data=pd.DataFrame({"n": [1, 2]}))
    dag = load_dag("asset_input.py", Path(__file__).parent / "dags")
    task = dag.get_task("count")
    assert [i.uri for i in task.inlets] == ["s3://elsewhere/x", WORLD_CITIES]
    dr = dag.test()
    assert task_states(dr) == {"count": "success"}
    summary = xcoms("asset_input", dr.run_id)[("count", "return_value")]
    assert summary["results"] == {"output": 2}
    assert dh.get_run(summary["run_key"]).spec["inputs"] == {"di": latest.key}


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "digitalhub://demo/dataitem/nothing-here",
            "input 'di': digitalhub://demo/dataitem/nothing-here names no dataitem",
        ),
        ("digitalhub://demo/run/r1", "input 'di': 'digitalhub://demo/run/r1': 'run' is not one of dataitem"),
    ],
)
def test_an_asset_input_that_names_no_entity_is_refused_before_any_run(uri: str, message: str) -> None:
    from digitalhub_provider.errors import DigitalHubError

    fn = dh.new_function(project="demo", name="count", kind="python", code="def count(di):\n    return 1\n",
                         handler="count", python_version="PYTHON3_11")  # fmt: skip
    with pytest.raises(DigitalHubError, match=re.escape(message)):
        fn.run(inputs={"di": uri})
    assert dh.list_runs("demo") == []
