"""End to end on a real Airflow 3 deployment: api-server, scheduler (LocalExecutor) and dag-processor.

The example DAGs are parsed by the dag-processor, triggered through the REST API and run by
the scheduler's workers through the Execution API; the platform store they fill is then read
back in-process. The CSV comes from an HTTP server of the test (the read-only http source).
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

import digitalhub_provider as dh
from digitalhub_provider.launchers import processes
from digitalhub_provider.lineage import namespace_and_name
from tests.airflow_servers import AirflowDeployment, airflow_deployment
from tests.test_lineage import openlineage_events

DATA = Path(__file__).resolve().parent.parent / "dags" / "data"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def csv_url() -> Iterator[str]:
    """dags/data served over HTTP on 127.0.0.1; the URL of world-cities.csv."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(DATA)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/world-cities.csv"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def expected_report(csv: Path) -> dict[str, object]:
    """What the ``report`` handler must return, computed from the CSV independently."""
    df = pd.read_csv(csv)
    inhabited = df[df["population"] > 0]
    by_country = inhabited.groupby("country")["population"].sum().sort_values(ascending=False).head(3)
    return {
        "cities": len(inhabited),
        "largest": str(inhabited.loc[inhabited["population"].idxmax(), "name"]),
        "top_countries": {str(k): int(v) for k, v in by_country.items()},
    }


def run_to_success(af: AirflowDeployment, dag_id: str, conf: dict[str, object]) -> str:
    run_id = af.trigger(dag_id, conf)
    state = af.wait_run(dag_id, run_id, timeout=240)
    if state != "success":
        pytest.fail(
            f"{dag_id} run {run_id} ended {state}; tasks {af.task_states(dag_id, run_id)}\n"
            f"{af.diagnostics(dag_id, run_id)}",
            pytrace=False,
        )
    return run_id


@pytest.mark.timeout(600)
def test_scheduler_runs_the_example_dags_triggered_through_the_rest_api(
    tmp_path: Path, dh_home: Path, csv_url: str
) -> None:
    started = time.monotonic()
    # Airflow's OpenLineage provider writes its events to a file (its file transport)
    lineage_file = tmp_path / "openlineage.jsonl"
    transport = json.dumps({"type": "file", "log_file_path": str(lineage_file), "append": True})
    lineage_env = {"AIRFLOW__OPENLINEAGE__TRANSPORT": transport, "AIRFLOW__OPENLINEAGE__NAMESPACE": "dh-e2e"}
    with airflow_deployment(tmp_path / "airflow", extra_env=lineage_env) as af:
        assert af.env["DIGITALHUB_HOME"] == str(dh_home)
        af.wait_dag("world_cities")
        af.wait_dag("greet_with_params")
        print(f"deployment up and DAGs parsed after {time.monotonic() - started:.1f}s")

        run_id = run_to_success(af, "world_cities", {"url": csv_url})
        print(f"world_cities succeeded after {time.monotonic() - started:.1f}s")

        # the platform store, read in-process
        runs = [r for r in dh.list_runs("demo") if "airflow.dag_id=world_cities" in (r.metadata.labels or [])]
        assert len(runs) == 2 and {r.status.state for r in runs} == {"COMPLETED"}
        download = next(r for r in runs if "world-cities" in (r.status.get("outputs") or {}))
        report = next(r for r in runs if r.key != download.key)
        di = dh.get_dataitem("world-cities", project="demo")
        assert {"type": "produced_by", "dest": download.key} in [r.to_dict() for r in di.metadata.relationships]
        assert download.spec["parameters"] == {"url": csv_url}
        expected = expected_report(DATA / "world-cities.csv")
        assert report.results() == expected
        assert {f"airflow.run_id={run_id}", "airflow.task_id=report"} <= set(report.metadata.labels or [])

        assert f"kept {expected['cities']} of the cities in {csv_url}" in af.task_log(
            "world_cities", run_id, "download"
        )

        # the same values through XCom, read with the REST API
        assert af.xcom("world_cities", run_id, "download", "world-cities") == di.key
        for key, value in expected.items():
            assert af.xcom("world_cities", run_id, "report", key) == value
        summary = af.xcom("world_cities", run_id, "report", "return_value")
        assert summary["run_key"] == report.key and summary["state"] == "COMPLETED"

        # OpenLineage: the operators' datasets (the dataitem with its schema) and DigitalHub run facets
        lineage = openlineage_events(lineage_file, {"world_cities.download", "world_cities.report"})
        made = lineage[("world_cities.download", "COMPLETE")]
        where = namespace_and_name(di.spec["path"])
        assert [(o["namespace"], o["name"]) for o in made["outputs"]] == [where]
        assert [f["name"] for f in made["outputs"][0]["facets"]["schema"]["fields"]] == [
            f["name"] for f in di.spec["schema"]["fields"]
        ]
        assert made["run"]["facets"]["digitalhubRun"]["runKey"] == download.key
        used = lineage[("world_cities.report", "COMPLETE")]
        assert [(i["namespace"], i["name"]) for i in used["inputs"]] == [where]
        assert used["run"]["facets"]["digitalhubRun"]["state"] == "COMPLETED"

        # Params from the trigger's conf, native types thanks to render_template_as_native_obj
        greet_run_id = run_to_success(af, "greet_with_params", {"name": "Ada", "times": 2, "shout": True})
        print(f"greet_with_params succeeded after {time.monotonic() - started:.1f}s")
        assert af.xcom("greet_with_params", greet_run_id, "greet", "greeting") == "HELLO, ADA! HELLO, ADA!"
        greet = dh.get_run(af.xcom("greet_with_params", greet_run_id, "greet", "return_value")["run_key"])
        assert greet.results()["greeting"] == "HELLO, ADA! HELLO, ADA!"
        assert greet.spec["parameters"] == {"name": "Ada", "times": 2, "shout": True}
        # the same Params again: the cached example reuses that run (same XCom, no runner)
        again_run_id = run_to_success(af, "greet_with_params", {"name": "Ada", "times": 2, "shout": True})
        again = dh.get_run(af.xcom("greet_with_params", again_run_id, "greet", "return_value")["run_key"])
        assert again.id != greet.id and again.status.get("cache") == {"hit": True, "from": greet.key}
        assert ("cached_from", greet.key) in {(r.type, r.dest) for r in again.metadata.relationships}
        assert af.xcom("greet_with_params", again_run_id, "greet", "greeting") == "HELLO, ADA! HELLO, ADA!"

        # a service set up by one task, called by the next, torn down by the last
        af.wait_dag("serve_scoring")
        served_run_id = run_to_success(af, "serve_scoring", {})
        assert af.xcom("serve_scoring", served_run_id, "score_batch", "output") == [2.5, 2.0]
        served = dh.get_run(af.xcom("serve_scoring", served_run_id, "serve", "return_value")["run_key"])
        assert served.state == "STOPPED" and served.status.get("service")["url"].startswith("http://127.0.0.1:")
        assert not processes.group_alive(int(served.status.get("pid")))
        leaders = [p.pid for p in af.procs.values()]

    print(f"stopped after {time.monotonic() - started:.1f}s ({af.stop_seconds}); {len(af.tracked)} processes tracked")
    assert af.left_behind == [], f"processes left behind: {af.left_behind}"
    assert all(proc.returncode is not None for proc in af.procs.values())
    for pid in leaders:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
