"""One Airflow task, measured as a worker runs it: parse its DAG file in a fresh process, then run it.

Used by P2 and P6. In Airflow 3 a task instance's process is forked by the worker's supervisor,
which marks it running (its start date), and the process then parses the DAG file and executes
the task: the time a task costs a worker is the DAG file's parse (the operators' modules imported
for the first time) plus the task itself. ``dag.test()`` runs the task in-process on a DAG that is
already parsed, so a sample here is, in a fresh interpreter:

1. an untimed ``dag.test()`` of an EmptyOperator DAG in a bundle of its own: Airflow starts its
   in-process execution API once per interpreter (10 to 20 s here), which a real worker has running;
2. ``parse``: importing the variant's DAG file (nothing of its operators imported before);
3. ``task``: ``dag.test()`` of that DAG, whose bundle holds only that file; the task instance's
   duration, start to end, as Airflow records it.

The figure is ``parse + task``; both parts are kept in the JSON.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.common import Config, median, run_worker, summary, worker_main

MODULE = "bench.airflow_task"
WARM_DAG = """from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="bench_warm", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    EmptyOperator(task_id="t")
"""


def write_variants(base: Path, dags: dict[str, str]) -> dict[str, Path]:
    """Each variant's DAG file in a folder (a bundle) of its own, next to the warm-up bundle."""
    warm = base / "dags" / "_warm"
    warm.mkdir(parents=True, exist_ok=True)
    (warm / "bench_warm.py").write_text(WARM_DAG)
    files = {}
    for name, text in dags.items():
        folder = base / "dags" / name
        folder.mkdir(parents=True, exist_ok=True)
        files[name] = folder / f"{name}.py"
        files[name].write_text(text)
    return files


def variant_env(env: dict[str, str], file: Path) -> dict[str, str]:
    """Two bundles: the warm-up DAG's and the variant's (``dag.test()`` parses only the bundle it needs)."""
    warm = file.parent.parent / "_warm"
    bundles = [
        {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {"path": str(p)}}
        for name, p in (("bench-warm", warm), (f"bench-{file.stem}", file.parent))
    ]
    return {
        **env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(file.parent),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
    }


# -- the worker ----------------------------------------------------------------------------------------------
def dagtest(file: str) -> dict[str, Any]:
    from tests.airflow_helpers import load_dag

    path = Path(file)
    warm_dir = path.parent.parent / "_warm"
    warm = load_dag("bench_warm.py", warm_dir).test()
    if str(warm.state) != "success":
        raise RuntimeError(f"the warm-up DAG ended {warm.state}")
    t0 = time.perf_counter()
    dag = load_dag(path.name, path.parent)
    parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    dr = dag.test()
    wall = time.perf_counter() - t0
    tasks = task_durations(dr)
    if str(dr.state) != "success":
        raise RuntimeError(f"DAG run {dr.run_id} ended {dr.state}: {tasks}")
    return {"parse_s": parse, "wall_s": wall, "tasks": tasks, "dh_phases": dh_phases(dr.run_id)}


def task_durations(dr: Any) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dr.dag_id, TaskInstance.run_id == dr.run_id)
        ).all()
        return {
            f"{ti.task_id}[{ti.map_index}]": {
                "state": str(ti.state),
                "duration_s": (ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else None,
            }
            for ti in tis
        }


def dh_phases(run_id: str) -> dict[str, float] | None:
    """Where a DigitalHub run's time went, state by state (from the run's own timings)."""
    from datetime import datetime

    if not (Path(os.environ["DIGITALHUB_HOME"]) / "metadata.db").exists():
        return None
    import digitalhub_provider as dh

    runs = [
        r
        for r in dh.list_runs("bench", limit=20)
        if f"airflow.run_id={run_id}" in (r.metadata.labels or []) and r.status.state == "COMPLETED"
    ]
    if not runs:
        return None
    t = {k: datetime.fromisoformat(v).timestamp() for k, v in (runs[0].status.get("timings") or {}).items() if v}
    order = ("created", "built", "ready", "running", "handler_started", "handler_finished", "completed")
    present = [k for k in order if k in t]
    return {f"{a}->{b}": round(t[b] - t[a], 4) for a, b in itertools.pairwise(present)}


# -- the driver side -------------------------------------------------------------------------------------------
class Samples:
    """Per variant: parse, task and parse + task seconds, ``dag.test()`` wall time, DigitalHub run phases."""

    def __init__(self, names: list[str]) -> None:
        self.parse: dict[str, list[float]] = {n: [] for n in names}
        self.task: dict[str, list[float]] = {n: [] for n in names}
        self.total: dict[str, list[float]] = {n: [] for n in names}
        self.wall: dict[str, list[float]] = {n: [] for n in names}
        self.phases: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        self.warmup: dict[str, float] = {}

    def add(self, name: str, data: dict[str, Any]) -> None:
        task = data["tasks"]["t[-1]"]["duration_s"]
        self.parse[name].append(data["parse_s"])
        self.task[name].append(task)
        self.total[name].append(data["parse_s"] + task)
        self.wall[name].append(data["wall_s"])
        if data.get("dh_phases"):
            self.phases[name].append(data["dh_phases"])

    def median_total(self, name: str) -> float:
        return median(self.total[name])

    def median_task(self, name: str) -> float:
        return median(self.task[name])

    def details(self) -> dict[str, Any]:
        return {
            "parse_plus_task_seconds": {n: summary(v) for n, v in self.total.items()},
            "parse_seconds": {n: summary(v) for n, v in self.parse.items()},
            "task_duration_seconds": {n: summary(v) for n, v in self.task.items()},
            "dag_test_wall_seconds": {n: summary(v) for n, v in self.wall.items()},
            "warmup_parse_plus_task_seconds": self.warmup,
            "dh_run_phases_median_seconds": {
                n: {k: median([p[k] for p in v]) for k in v[0]} for n, v in self.phases.items() if v
            },
        }


def measure(
    cfg: Config,
    figure: str,
    env: dict[str, str],
    files: dict[str, Path],
    warm_up: tuple[str, ...],
    reps: int,
    log: Path,
) -> Samples:
    """Untimed runs of the ``warm_up`` variants (state created, environments built), then ``reps``
    rounds of every variant, interleaved so that the machine's load drifts over all of them alike."""
    samples = Samples(list(files))
    for name in warm_up:
        data = run_worker(MODULE, "dagtest", {"file": str(files[name])}, variant_env(env, files[name]), log).data
        samples.warmup[name] = data["parse_s"] + data["tasks"]["t[-1]"]["duration_s"]
        cfg.log(f"{figure} warm-up {name}: {samples.warmup[name]:.1f}s")
    for rep in range(reps):
        for name, file in files.items():
            samples.add(name, run_worker(MODULE, "dagtest", {"file": str(file)}, variant_env(env, file), log).data)
        cfg.log(
            f"{figure} round {rep + 1}/{reps} (parse + task): "
            + ", ".join(f"{n} {v[-1]:.2f}s" for n, v in samples.total.items())
        )
    return samples


if __name__ == "__main__":
    worker_main({"dagtest": dagtest})
