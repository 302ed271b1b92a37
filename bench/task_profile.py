"""``python -m bench.task_profile [--runs N]``: where a P5 task's ``execute`` spends its CPU.

P5's makespan follows what each task costs on a busy machine, and most of what our task costs over
a PythonOperator's is its ``execute``. This measures it as LocalExecutor runs it: a parent process
with what a worker has loaded (Airflow's task runner and supervisor, SQLAlchemy, pydantic; GC frozen
as the executor freezes it) forks one child per task; each child builds the P5 operator (a trivial
handler, in-process) and times one ``execute`` against a fake task instance. The first child creates
the function and the store (a first run, not counted); one more child runs under cProfile, and its
profile is printed grouped by package (exclusive time, profiler overhead included) and as the
provider's functions by cumulative time.

Outside a task runner the connection lookup goes to the secrets backends in this process instead of
through the supervisor and the api-server: the round trip a real task makes (and its CPU in the
other processes) is not in these figures; P5's CPU row per server has it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from typing import Any

CODE = "def handler(i):\n    return i + 1\n"


class _TaskInstance:
    dag_id, run_id, task_id, try_number = "p5_dh", "manual__bench", "t", 1

    def __init__(self, map_index: int) -> None:
        self.map_index = map_index
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _child(i: int, profile_to: str | None) -> None:
    from digitalhub_provider.operators import PythonRuntimeOperator  # the DAG file's import

    op = PythonRuntimeOperator(task_id="t", project="bench", function="trivial", code=CODE, handler="handler",
                               parameters={"i": i})  # fmt: skip
    context: Any = {"ti": _TaskInstance(i), "dag": None}
    started = time.process_time()
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        out = profiler.runcall(op.execute, context)
        profiler.dump_stats(profile_to)
    else:
        out = op.execute(context)
    cpu_ms = (time.process_time() - started) * 1000
    print(json.dumps({"cpu_ms": cpu_ms, "state": out["state"]}), flush=True)


def _fork(i: int, profile_to: str | None = None) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.dup2(write_end, 1)
            _child(i, profile_to)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as out:
        lines = [line for line in out if line.startswith("{")]
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not lines:
        raise RuntimeError(f"task {i} failed (exit status {status})")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _group(path: str) -> tuple[float, list[tuple[str, float]]]:
    import pstats

    stats: Any = pstats.Stats(path)
    by_group: Counter[str] = Counter()
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        if "digitalhub_provider/" in filename:
            key = "digitalhub_provider/" + filename.split("digitalhub_provider/")[1]
        elif "site-packages/" in filename:
            key = filename.split("site-packages/")[1].split("/")[0]
        elif filename.startswith("<frozen importlib"):
            key = "imports (importlib)"
        elif filename == "~":
            key = (
                "imports (marshal, exec)"
                if name in ("<built-in method marshal.loads>", "<built-in method builtins.exec>")
                else f"builtin {name}"
            )
        else:
            key = "stdlib " + os.path.basename(filename)
        by_group[key] += own
    return sum(by_group.values()), by_group.most_common(20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.task_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="tasks timed (default 15)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home (the store, execute.prof)")
    args = parser.parse_args(argv)
    from bench.common import compile_package, scrub_environ

    scrub_environ()
    compile_package()
    home = tempfile.mkdtemp(prefix="dh-task-profile-")
    os.environ.update({"AIRFLOW_HOME": f"{home}/airflow", "DIGITALHUB_HOME": f"{home}/dh",
                       "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})  # fmt: skip
    # what a LocalExecutor worker has loaded before it forks a task
    import airflow.sdk.execution_time.supervisor
    import airflow.sdk.execution_time.task_runner
    import pydantic
    import sqlalchemy

    del airflow, pydantic, sqlalchemy

    gc.freeze()
    _fork(0)  # creates the function, the store and its schema: a first run, not counted
    cpu = [_fork(i)["cpu_ms"] for i in range(1, args.runs + 1)]
    profile_path = f"{home}/execute.prof"
    _fork(args.runs + 1, profile_path)
    total, groups = _group(profile_path)
    print(f"execute of a P5 task, CPU ms over {len(cpu)} forked tasks: median {statistics.median(cpu):.1f}, "
          f"min {min(cpu):.1f}, max {max(cpu):.1f}")  # fmt: skip
    print(f"\none more under cProfile ({total * 1000:.1f} ms with the profiler's overhead), own time by place:")
    for key, own in groups:
        print(f"{own * 1000:8.2f} ms  {key}")
    import pstats

    print("\nthe provider's functions by cumulative time:")
    pstats.Stats(profile_path, stream=sys.stdout).sort_stats("cumulative").print_stats("digitalhub_provider", 15)
    if args.keep:
        print(f"\nkept: {home}")
    else:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
