"""The example DAGs under dag.test() on real Airflow 3, and what they leave in the platform."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import DAGS, load_dag, task_states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_world_cities_flow_outputs_lineage_and_xcom(dh_home: Path) -> None:
    dag = load_dag("world_cities.py")
    assert dag.schedule == "0 3 * * *" or str(dag.timetable.summary) == "0 3 * * *"
    dr = dag.test()
    assert str(dr.state) == "success", task_states(dr)

    runs = dh.list_runs("demo")
    assert len(runs) == 2 and {r.status.state for r in runs} == {"COMPLETED"}
    processed = dh.get_dataitem("world-cities", project="demo")
    assert processed.kind == "table"
    df = processed.as_df()
    assert len(df) == 45 and df.iloc[0]["name"] == "Tokyo" and "population_millions" in df.columns
    download_run = next(r for r in runs if "world-cities" in (r.status.get("outputs") or {}))
    assert {"type": "produced_by", "dest": download_run.key} in [r.to_dict() for r in processed.metadata.relationships]

    x = xcoms("world_cities", dr.run_id)
    assert x[("download", "world-cities")] == processed.key
    assert x[("report", "cities")] == 45 and x[("report", "largest")] == "Tokyo"
    source = pd.read_csv(DAGS / "data" / "world-cities.csv")
    expected = source.groupby("country")["population"].sum().nlargest(3)
    assert x[("report", "top_countries")] == {k: int(v) for k, v in expected.items()}
    summary = x[("report", "return_value")]
    assert summary["state"] == "COMPLETED" and summary["results"]["largest"] == "Tokyo"
    assert summary["run_key"].startswith("store://demo/run/python+job:run/")
    report_run = dh.get_run(summary["run_key"])
    assert {"type": "consumes", "dest": processed.key} in [r.to_dict() for r in report_run.metadata.relationships]
    labels = set(report_run.metadata.labels or [])
    assert {"airflow.dag_id=world_cities", f"airflow.run_id={dr.run_id}", "airflow.task_id=report",
            "airflow.map_index=-1", "airflow.try_number=1"} <= labels  # fmt: skip
    # no console named by the connection: the link opens the run in the console the plugin serves
    link = x[("report", "_link_DigitalHubRunLink")]
    assert link.endswith(f"/digitalhub/console/#/projects/demo/runs/{report_run.id}")

    # rerunning the DAG makes no new function versions
    versions = len(dh.list_functions("demo", all_versions=True))
    dr2 = load_dag("world_cities.py").test()
    assert str(dr2.state) == "success"
    assert len(dh.list_functions("demo", all_versions=True)) == versions == 2


def test_params_feed_the_run_parameters(dh_home: Path) -> None:
    dag = load_dag("greet_with_params.py")
    dr = dag.test(run_conf={"name": "Ada", "times": 2, "shout": True})
    assert str(dr.state) == "success", task_states(dr)
    x = xcoms("greet_with_params", dr.run_id)
    assert x[("greet", "greeting")] == "HELLO, ADA! HELLO, ADA!"
    run = dh.get_run(x[("greet", "return_value")]["run_key"])
    assert run.spec["parameters"] == {"name": "Ada", "times": 2, "shout": True}


def test_fails_twice_then_succeeds_each_try_its_own_run(dh_home: Path) -> None:
    dag = load_dag("retry_with_backoff.py")
    task = dag.get_task("flaky")
    assert task.retries == 2 and task.retry_exponential_backoff
    dr = dag.test()
    assert str(dr.state) == "success", task_states(dr)
    runs = sorted(dh.list_runs("demo"), key=lambda r: r.metadata.created)
    assert [r.status.state for r in runs] == ["ERROR", "ERROR", "COMPLETED"]
    assert "try 1 fails on purpose" in runs[0].status.message
    assert len({r.spec["task"] for r in runs}) == 1  # every try under the same task
    tries = [next(lab for lab in r.metadata.labels if lab.startswith("airflow.try_number=")) for r in runs]
    assert tries == ["airflow.try_number=1", "airflow.try_number=2", "airflow.try_number=3"]
    assert xcoms("retry_with_backoff", dr.run_id)[("flaky", "succeeded_on_try")] == 3


def test_build_once_then_run_on_what_was_built(dh_home: Path) -> None:
    """build_then_run: the build's XCom names the environment it made, recorded on the function's next
    version; the job runs on it (the instruction's pinned six); a second DAG run adds no version."""
    dr = load_dag("build_then_run.py").test()
    assert str(dr.state) == "success", task_states(dr)
    x = xcoms("build_then_run", dr.run_id)
    function = dh.get_function("six-versions", project="demo")
    assert x[("build", "image")] == function.spec["image"] and x[("build", "image")].startswith("venv://")
    assert x[("build", "function")] == function.key
    assert x[("job", "six_version")] == "1.16.0"
    job = dh.get_run(x[("job", "return_value")]["run_key"])
    assert job.spec["function"] == function.key
    assert len(dh.list_functions("demo", all_versions=True)) == 2  # the DAG's, and the built one

    again = load_dag("build_then_run.py").test()
    assert str(again.state) == "success", task_states(again)
    assert len(dh.list_functions("demo", all_versions=True)) == 2
    assert xcoms("build_then_run", again.run_id)[("job", "six_version")] == "1.16.0"
