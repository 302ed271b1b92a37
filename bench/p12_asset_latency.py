"""P12: from a producer task's end to the start of the DAG run its Asset event triggers.

Under a real scheduler (LocalExecutor, job schedule on: Airflow creates Asset-triggered runs only
then), a producer DAG of one task and a consumer DAG scheduled on its Asset, twice: a
``PythonRuntimeOperator`` whose run outputs a dataitem (its event through the operators' alias, as
for any output no outlet names; and on a declared outlet), and the anchor, a ``PythonOperator`` with
the Asset as its outlet. Each repeat triggers a producer, waits for the consumer's run, and takes the
seconds from the producer task instance's ``end_date`` to the consumer run's ``start_date`` (both as
Airflow's API records them). The delay is the scheduler's: the event is registered with the task's
success, and the next scheduler loop creates and starts the run. No target set by the issue.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Config, FigureResult, median, ratio_row, summary
from bench.p5_mapped import _seconds

HEADER = """from datetime import datetime

from airflow.sdk import DAG, Asset
"""
CODE = "import pandas as pd\\n\\ndef make():\\n    return pd.DataFrame({'n': [1, 2, 3]})\\n"
ALIASED = "digitalhub://bench/dataitem/p12-aliased"
DECLARED = "digitalhub://bench/dataitem/p12-declared"
PLAIN = "p12://plain"
DAGS = {
    "p12_dh_producer": "from digitalhub_provider.operators import PythonRuntimeOperator\n"
    + HEADER
    + f'CODE = "{CODE}"\n'
    + 'with DAG(dag_id="p12_dh_producer", schedule=None, start_date=datetime(2026, 1, 1)):\n'
    + '    PythonRuntimeOperator(task_id="produce", project="bench", function="p12-make", code=CODE,\n'
    + '                          handler="make", outputs=["p12-aliased"])\n',
    "p12_declared_producer": "from digitalhub_provider.operators import PythonRuntimeOperator\n"
    + HEADER
    + f'CODE = "{CODE}"\n'
    + 'with DAG(dag_id="p12_declared_producer", schedule=None, start_date=datetime(2026, 1, 1)):\n'
    + '    PythonRuntimeOperator(task_id="produce", project="bench", function="p12-make", code=CODE,\n'
    + f'                          handler="make", outputs=["p12-declared"], outlets=[Asset("{DECLARED}")])\n',
    "p12_plain_producer": "from airflow.providers.standard.operators.python import PythonOperator\n"
    + HEADER
    + 'with DAG(dag_id="p12_plain_producer", schedule=None, start_date=datetime(2026, 1, 1)):\n'
    + f'    PythonOperator(task_id="produce", python_callable=lambda: 1, outlets=[Asset("{PLAIN}")])\n',
}
for _producer, _uri in (("p12_dh", ALIASED), ("p12_declared", DECLARED), ("p12_plain", PLAIN)):
    DAGS[f"{_producer}_consumer"] = (
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        + HEADER
        + f'with DAG(dag_id="{_producer}_consumer", schedule=[Asset("{_uri}")], start_date=datetime(2026, 1, 1)):\n'
        + '    EmptyOperator(task_id="consume")\n'
    )
PAIRS = ("p12_dh", "p12_declared", "p12_plain")


def _latency(dep: Any, pair: str) -> float:
    """One producer run; seconds from its task's end to the start of the consumer run it triggered."""
    consumer = f"{pair}_consumer"
    before = {r["dag_run_id"] for r in dep.api("GET", f"dags/{consumer}/dagRuns").json().get("dag_runs", [])}
    run_id = dep.trigger(f"{pair}_producer", {})
    state = dep.wait_run(f"{pair}_producer", run_id, timeout=300)
    if state != "success":
        raise RuntimeError(f"P12 {pair}_producer {run_id} ended {state}: {dep.diagnostics()}")
    ti = dep.api("GET", f"dags/{pair}_producer/dagRuns/{run_id}/taskInstances/produce").json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = dep.api("GET", f"dags/{consumer}/dagRuns").json().get("dag_runs", [])
        new = [r for r in runs if r["dag_run_id"] not in before and r.get("start_date")]
        if new:
            waited = _seconds(ti["end_date"], new[0]["start_date"])
            if waited is None:
                break
            dep.wait_run(consumer, new[0]["dag_run_id"], timeout=120)
            return waited
        time.sleep(0.2)
    raise RuntimeError(f"P12: no {consumer} run started after {pair}_producer {run_id}")


def run(cfg: Config, fig: FigureResult) -> None:
    from tests.airflow_servers import airflow_deployment

    reps = cfg.reps(full=10, quick=3)
    base = cfg.figure_dir("P12")
    dags = base / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for dag_id, text in DAGS.items():
        (dags / f"{dag_id}.py").write_text(text)
    extra = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        "DIGITALHUB_HOME": str(base / "dh"),
        "DIGITALHUB_ENVS_DIR": str(cfg.envs_dir),
    }
    latencies: dict[str, list[float]] = {pair: [] for pair in PAIRS}
    with airflow_deployment(base / "airflow", extra) as dep:
        for dag_id in DAGS:
            dep.wait_dag(dag_id, timeout=300)
        for pair in PAIRS:
            assert dep.api("PATCH", f"dags/{pair}_consumer", json={"is_paused": False}).status_code == 200
        for pair in PAIRS:  # warm-up, untimed: the first event also links the alias to the asset
            _latency(dep, pair)
        for rep in range(reps):
            for pair in PAIRS:
                latencies[pair].append(round(_latency(dep, pair), 3))
                cfg.log(f"P12 {rep + 1}/{reps} {pair}: {latencies[pair][-1]:.2f}s")
    med = {pair: median(values) for pair, values in latencies.items()}
    fig.rows += [
        ratio_row("P12", "producer task's end to the triggered DAG run's start, output through the alias",
                  med["p12_dh"], "s", "PythonOperator outlet", med["p12_plain"], None),
        ratio_row("P12", "the same, the output's Asset declared as the task's outlet",
                  med["p12_declared"], "s", "PythonOperator outlet", med["p12_plain"], None),
    ]  # fmt: skip
    fig.details.update(
        {"repeats": reps, "latency_seconds": {pair: summary(values) for pair, values in latencies.items()}}
    )
