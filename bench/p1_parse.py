"""P1: parsing a DAG file of 100 PythonRuntimeOperators, against 100 PythonOperators and 100 KubernetesPodOperators.

Each parse runs in a fresh interpreter (as the dag-processor parses each file in a fresh child)
through the dag-processor's own ``_parse_file`` (``BundleDagBag`` + serialization):

* *import included*: only ``airflow.sdk`` and the dag-processor's machinery are imported before
  the clock starts; the operators' modules are imported by the DAG file, inside the timing.
* *as the dag-processor does it*: ``airflow.*`` modules the file imports are pre-imported first
  (``[dag_processor] parsing_pre_import_modules``, on by default): PythonOperator's and
  KubernetesPodOperator's modules are then free, the provider's (not ``airflow.*``) is not.

And the cost of ``import digitalhub_provider.operators`` on top of ``import airflow.sdk``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import Config, FigureResult, Row, child_env, median, ratio_row, run_worker, summary, worker_main

MODULE = "bench.p1_parse"
TASKS = 100
IMPORT_TARGET_MS = 30.0

HEADER = "from datetime import datetime\n\nfrom airflow.sdk import DAG\n"
DAGS = {
    "dh": HEADER
    + "from digitalhub_provider.operators import PythonRuntimeOperator\n\n"
    + 'CODE = "def handler(i):\\n    return i\\n"\n\n'
    + 'with DAG(dag_id="p1_dh", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + "    for i in range({n}):\n"
    + '        PythonRuntimeOperator(task_id=f"t{{i}}", project="bench", function=f"f{{i}}", code=CODE,\n'
    + '                              handler="handler", parameters={{"i": i}})\n',
    "python": HEADER
    + "from airflow.providers.standard.operators.python import PythonOperator\n\n\n"
    + "def handler(i):\n    return i\n\n\n"
    + 'with DAG(dag_id="p1_python", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + "    for i in range({n}):\n"
    + '        PythonOperator(task_id=f"t{{i}}", python_callable=handler, op_kwargs={{"i": i}})\n',
    "kpo": HEADER
    + "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator\n\n"
    + 'with DAG(dag_id="p1_kpo", schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n'
    + "    for i in range({n}):\n"
    + '        KubernetesPodOperator(task_id=f"t{{i}}", name=f"t{{i}}", namespace="default",\n'
    + '                              image="python:3.11-slim", cmds=["python", "-c"],\n'
    + '                              arguments=[f"print({{i}})"])\n',
}
IMPORTS = {
    "dh": "digitalhub_provider.operators",
    "python": "airflow.providers.standard.operators.python",
    "kpo": "airflow.providers.cncf.kubernetes.operators.pod",
}
LABELS = {"dh": "PythonRuntimeOperator", "python": "PythonOperator", "kpo": "KubernetesPodOperator"}


# -- workers (fresh interpreters) ----------------------------------------------------------------------
def parse(file: str, bundle: str, preimport: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401
    import structlog
    from airflow.dag_processing.processor import DagFileParseRequest, _parse_file, _pre_import_airflow_modules

    log = structlog.get_logger()
    if preimport:
        _pre_import_airflow_modules(file, log)
    t1 = time.perf_counter()
    result = _parse_file(DagFileParseRequest(file=file, bundle_path=Path(bundle), bundle_name="bench"), log)
    t2 = time.perf_counter()
    assert result is not None
    if result.import_errors:
        raise RuntimeError(f"import errors: {result.import_errors}")
    tasks = sum(len(d.data["dag"]["tasks"]) for d in result.serialized_dags)
    return {"parse_s": t2 - t1, "setup_s": t1 - t0, "dags": len(result.serialized_dags), "tasks": tasks}


def import_delta(module: str) -> dict[str, Any]:
    import importlib

    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401

    t1 = time.perf_counter()
    importlib.import_module(module)
    t2 = time.perf_counter()
    heavy = [m for m in ("pandas", "pyarrow", "boto3", "kubernetes", "sqlalchemy", "pydantic") if m in _modules()]
    return {"airflow_sdk_s": t1 - t0, "delta_s": t2 - t1, "heavy_loaded_after": heavy}


def _modules() -> set[str]:
    import sys

    return {m.split(".")[0] for m in sys.modules}


# -- the figure ----------------------------------------------------------------------------------------
def run(cfg: Config, fig: FigureResult) -> None:
    base = cfg.figure_dir("P1")
    bundle = base / "dags"
    bundle.mkdir(exist_ok=True)
    files = {}
    for name, text in DAGS.items():
        files[name] = bundle / f"p1_{name}.py"
        files[name].write_text(text.format(n=TASKS))
    env = child_env(base, cfg.envs_dir, {"AIRFLOW__CORE__DAGS_FOLDER": str(bundle)})
    log = base / "workers.log"
    reps = cfg.reps(full=7, quick=2)

    # one untimed round: bytecode compiled, Airflow's config written, file caches warm
    for file in files.values():
        run_worker(MODULE, "parse", {"file": str(file), "bundle": str(bundle), "preimport": False}, env, log)

    samples: dict[str, dict[str, list[float]]] = {m: {n: [] for n in files} for m in ("cold", "preimported")}
    tasks: dict[str, int] = {}
    for rep in range(reps):  # round-robin: machine load drifts equally over the variants
        for mode in ("cold", "preimported"):
            for name, file in files.items():
                res = run_worker(
                    MODULE,
                    "parse",
                    {"file": str(file), "bundle": str(bundle), "preimport": mode == "preimported"},
                    env,
                    log,
                ).data
                samples[mode][name].append(res["parse_s"])
                tasks[name] = res["tasks"]
        cfg.log(f"P1 parse round {rep + 1}/{reps}")

    imports: dict[str, list[float]] = {n: [] for n in IMPORTS}
    sdk: list[float] = []
    heavy: dict[str, list[str]] = {}
    for _ in range(reps + 1):
        for name, module in IMPORTS.items():
            res = run_worker(MODULE, "import_delta", {"module": module}, env, log).data
            imports[name].append(res["delta_s"])
            sdk.append(res["airflow_sdk_s"])
            heavy[name] = res["heavy_loaded_after"]
    imports = {n: v[1:] for n, v in imports.items()}  # the first import compiled bytecode

    med = {mode: {n: median(v) for n, v in s.items()} for mode, s in samples.items()}
    fig.rows += [
        ratio_row("P1", "parse 100 operators, import included", med["cold"]["dh"], "s",
                  "100 PythonOperator", med["cold"]["python"], 1.1),
        ratio_row("P1", "parse 100 operators, import included", med["cold"]["dh"], "s",
                  "100 KubernetesPodOperator", med["cold"]["kpo"], None),
        ratio_row("P1", "parse, airflow.* pre-imported as the dag-processor does", med["preimported"]["dh"], "s",
                  "100 PythonOperator", med["preimported"]["python"], None),
        ratio_row("P1", "parse, airflow.* pre-imported as the dag-processor does", med["preimported"]["dh"], "s",
                  "100 KubernetesPodOperator", med["preimported"]["kpo"], None),
    ]  # fmt: skip
    delta_ms = median(imports["dh"]) * 1000
    fig.rows.append(
        Row(
            "P1",
            "import digitalhub_provider.operators after airflow.sdk",
            delta_ms,
            "ms",
            "standard PythonOperator module",
            median(imports["python"]) * 1000,
            f"≤ {IMPORT_TARGET_MS:g} ms",
            delta_ms <= IMPORT_TARGET_MS,
        )
    )
    fig.details.update(
        {
            "tasks_per_dag": tasks,
            "repeats": reps,
            "parse_seconds": {mode: {n: summary(v) for n, v in s.items()} for mode, s in samples.items()},
            "import_delta_seconds": {n: summary(v) for n, v in imports.items()},
            "import_airflow_sdk_seconds": summary(sdk),
            "heavy_modules_loaded_after_import": heavy,
        }
    )


if __name__ == "__main__":
    worker_main({"parse": parse, "import_delta": import_delta})
