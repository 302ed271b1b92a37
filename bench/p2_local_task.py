"""P2: one task running a trivial handler on the local launcher, end to end inside Airflow.

Every sample is the DAG file's parse plus the task, in a fresh interpreter, as a worker pays them
(see :mod:`bench.airflow_task`): the provider's imports and store connections are paid by every
task, as in Airflow 3 where each task instance runs in a process of its own. Variants, interleaved
round by round:

* ``dh``: PythonRuntimeOperator, no requirements: the runner in a subprocess of the worker's Python;
* ``external``: ExternalPythonOperator running the same function with the same interpreter;
* ``dh_req``: PythonRuntimeOperator with one requirement (``six``): its cached virtualenv,
  built in the untimed warm-up round ("once the environment is built");
* ``venv``: PythonVirtualenvOperator with the same requirement (a new virtualenv every run, its default);
* ``venv_cached``: PythonVirtualenvOperator with ``venv_cache_path`` (built once, then reused).
"""

from __future__ import annotations

from bench.airflow_task import measure, write_variants
from bench.common import Config, FigureResult, child_env, migrated_airflow, ratio_row

WARM_UP = ("dh", "dh_req", "venv_cached")  # the variants with state to create before timing
REQUIREMENT = "six"

HEADER = """from datetime import datetime

from airflow.sdk import DAG

CODE = "def handler(i):\\n    return i + 1\\n"


def handler(i):
    return i + 1


"""
DAGS = {
    "dh": "from digitalhub_provider.operators import PythonRuntimeOperator\n"
    + HEADER
    + 'with DAG(dag_id="p2_dh", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + '    PythonRuntimeOperator(task_id="t", project="bench", function="trivial", code=CODE, handler="handler",\n'
    + '                          parameters={"i": 41})\n',
    "external": "import sys\n\nfrom airflow.providers.standard.operators.python import ExternalPythonOperator\n"
    + HEADER
    + 'with DAG(dag_id="p2_external", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + '    ExternalPythonOperator(task_id="t", python=sys.executable, python_callable=handler, op_kwargs={"i": 41})\n',
    "dh_req": "from digitalhub_provider.operators import PythonRuntimeOperator\n"
    + HEADER
    + 'with DAG(dag_id="p2_dh_req", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + '    PythonRuntimeOperator(task_id="t", project="bench", function="trivial-req", code=CODE, handler="handler",\n'
    + f'                          parameters={{"i": 41}}, requirements=["{REQUIREMENT}"])\n',
    "venv": "from airflow.providers.standard.operators.python import PythonVirtualenvOperator\n"
    + HEADER
    + 'with DAG(dag_id="p2_venv", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + f'    PythonVirtualenvOperator(task_id="t", python_callable=handler, requirements=["{REQUIREMENT}"],\n'
    + '                             op_kwargs={"i": 41})\n',
    "venv_cached": "from airflow.providers.standard.operators.python import PythonVirtualenvOperator\n"
    + HEADER
    + 'with DAG(dag_id="p2_venv_cached", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + f'    PythonVirtualenvOperator(task_id="t", python_callable=handler, requirements=["{REQUIREMENT}"],\n'
    + '                             op_kwargs={"i": 41}, venv_cache_path="{cache}")\n',
}


# -- the figure -------------------------------------------------------------------------------------------------
def run(cfg: Config, fig: FigureResult) -> None:
    base = cfg.figure_dir("P2")
    files = write_variants(base, {n: t.replace("{cache}", str(base / "venv-cache")) for n, t in DAGS.items()})
    env = child_env(base, cfg.envs_dir)
    migrated_airflow(cfg, base, env)
    reps = cfg.reps(full=5, quick=1)
    s = measure(cfg, "P2", env, files, WARM_UP, reps, base / "workers.log")

    total = s.median_total
    fig.rows += [
        ratio_row("P2", "trivial handler, local launcher: parse + task", total("dh"), "s",
                  "ExternalPythonOperator", total("external"), 1.1),
        ratio_row("P2", f"one requirement ({REQUIREMENT}), env built: parse + task", total("dh_req"), "s",
                  "PythonVirtualenvOperator", total("venv"), 0.1),
        ratio_row("P2", f"one requirement ({REQUIREMENT}), env built: parse + task", total("dh_req"), "s",
                  "PythonVirtualenvOperator, venv_cache_path", total("venv_cached"), None),
        ratio_row("P2", "trivial handler: task duration only", s.median_task("dh"), "s",
                  "ExternalPythonOperator", s.median_task("external"), None),
    ]  # fmt: skip
    fig.details.update({"repeats": reps, "requirement": REQUIREMENT, **s.details()})
