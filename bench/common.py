"""What every figure shares: configuration, statistics, workers in fresh processes, servers, output.

A figure is measured in subprocesses ("workers"): ``python -m bench.pN_x --worker NAME '<json>'``
runs one function of that module in a fresh interpreter, with its own ``AIRFLOW_HOME`` and
``DIGITALHUB_HOME`` under the run's temporary folder, and prints one ``BENCH-RESULT {json}``
line. The parent reaps it with ``os.wait4``, which gives that child's own peak RSS. Nothing
here imports Airflow: the driver never reads an Airflow configuration, so nothing is
written into the user's home.

No benchmark asserts on time: a figure either measures or reports an error.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULT_MARK = "BENCH-RESULT "
MB = 1024 * 1024


# -- configuration ----------------------------------------------------------------------------------
@dataclass
class Config:
    """How big and how often: ``quick`` gives the small sizes of ``--quick``."""

    quick: bool
    workdir: Path
    envs_dir: Path
    rows: int | None = None
    repeats: int | None = None
    keep: bool = False
    verbose: bool = True
    p5_postgres: bool = False
    p5_heartbeats: tuple[float, ...] = (5.0, 1.0)

    def reps(self, full: int, quick: int) -> int:
        return self.repeats if self.repeats else (quick if self.quick else full)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def figure_dir(self, figure: str) -> Path:
        path = self.workdir / figure.lower()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- results ------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table: the provider's figure, its anchor measured in the same run, and the target.

    ``higher_is_better`` says which way the ratio reads (throughputs and rates: higher is better).
    ``met`` is None when there is no target (information only).
    """

    figure: str
    what: str
    measured: float | None
    unit: str
    anchor_name: str = ""
    anchor: float | None = None
    target: str = ""
    met: bool | None = None
    ratio: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.measured is not None and self.anchor:
            self.ratio = self.measured / self.anchor


@dataclass
class FigureResult:
    figure: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


def ratio_row(
    figure: str,
    what: str,
    measured: float | None,
    unit: str,
    anchor_name: str,
    anchor: float | None,
    limit: float | None,
    *,
    higher_is_better: bool = False,
    note: str = "",
) -> Row:
    """A row whose target is a ratio to the anchor: ``<= limit x`` (times) or ``>= limit x`` (throughputs)."""
    ratio = measured / anchor if measured is not None and anchor else None
    met: bool | None = None
    target = ""
    if limit is not None:
        target = f"{'≥' if higher_is_better else '≤'} {limit:g}x"
        if ratio is not None:
            met = ratio >= limit if higher_is_better else ratio <= limit
    return Row(figure, what, measured, unit, anchor_name, anchor, target, met, ratio, note)


# -- statistics -----------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def p95(values: Sequence[float]) -> float:
    return percentile(values, 95)


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """What the JSON keeps of a series of samples."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": median(values),
        "p95": p95(values),
        "min": min(values),
        "max": max(values),
    }


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 0) -> list[float]:
    """Wall-clock seconds of ``fn()``, ``repeats`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


# -- environments -------------------------------------------------------------------------------------------
def compile_package() -> None:
    """Write the provider's bytecode, as installing a wheel does. An editable install under
    ``PYTHONDONTWRITEBYTECODE`` (set on some CI machines) has none, and every task process of a
    figure would then compile the provider's modules from source again (~35 ms per task)."""
    import compileall

    compileall.compile_dir(str(REPO / "digitalhub_provider"), quiet=1)


def scrub_environ() -> None:
    """Forget any Airflow or DigitalHub setting of the calling shell: every figure sets its own."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW", "DIGITALHUB_")):
            del os.environ[name]


def child_env(home: Path, envs_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: a throw-away AIRFLOW_HOME and DIGITALHUB_HOME under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DIGITALHUB_"))}
    airflow_home = home / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "DIGITALHUB_HOME": str(home / "dh"),
            "DIGITALHUB_ENVS_DIR": str(envs_dir),
        }
    )
    env.update(extra or {})
    return env


_TEMPLATE: dict[str, Path] = {}


def migrated_airflow(cfg: Config, home: Path, env: dict[str, str]) -> None:
    """Give ``home``'s AIRFLOW_HOME a migrated SQLite database (migrated once per bench run, then copied)."""
    template = _TEMPLATE.get("db")
    if template is None:
        tpl_home = cfg.workdir / "airflow-template"
        tpl_env = child_env(tpl_home, cfg.envs_dir)
        cfg.log("migrating a template Airflow database (once per bench run)")
        res = subprocess.run(
            [PYTHON, "-m", "airflow", "db", "migrate"],
            env=tpl_env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{(res.stdout + res.stderr)[-3000:]}")
        template = tpl_home / "airflow" / "airflow.db"
        _TEMPLATE["db"] = template
    dest = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)


# -- workers ---------------------------------------------------------------------------------------------------
@dataclass
class WorkerResult:
    data: dict[str, Any]
    wall: float
    maxrss_bytes: int  # the worker's own peak RSS and that of the children it reaped (wait4)
    returncode: int


class WorkerError(RuntimeError):
    pass


def run_worker(
    module: str,
    func: str,
    args: dict[str, Any],
    env: dict[str, str],
    log: Path,
    timeout: float = 1800.0,
) -> WorkerResult:
    """Run ``func(**args)`` of ``module`` in a fresh interpreter (its own process group)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [PYTHON, "-m", module, "--worker", func, json.dumps(args)]
    with open(log, "ab") as fh:
        fh.write(f"\n==== {func} {json.dumps(args)[:500]}\n".encode())
        fh.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    code: int | None = None
    usage: Any = None
    deadline = start + timeout
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                proc.returncode = code  # reaped here: Popen must not wait for it again
                break
            if time.perf_counter() > deadline:
                break
            time.sleep(0.01)
    finally:
        wall = time.perf_counter() - start
        _kill_group(proc.pid)  # whatever the worker left in its group
        if code is None:
            proc.wait(timeout=30)
    text = log.read_text(errors="replace")
    section = text[text.rfind("\n==== ") :]
    if code is None:
        raise WorkerError(f"{module}:{func} timed out after {timeout:.0f}s; log {log}\n{section[-3000:]}")
    lines = [line for line in section.splitlines() if line.startswith(RESULT_MARK)]
    if code != 0 or not lines:
        raise WorkerError(f"{module}:{func} exited {code}; log {log}\n{section[-4000:]}")
    return WorkerResult(json.loads(lines[-1][len(RESULT_MARK) :]), wall, int(usage.ru_maxrss) * 1024, code)


def worker_main(functions: dict[str, Callable[..., Any]]) -> None:
    """Entry point of a figure module run as ``python -m bench.pN_x --worker NAME '<json args>'``."""
    if len(sys.argv) != 4 or sys.argv[1] != "--worker":
        print(f"usage: python -m {sys.argv[0]} --worker NAME '<json>'", file=sys.stderr)
        sys.exit(2)
    name, args = sys.argv[2], json.loads(sys.argv[3])
    result = functions[name](**args)
    sys.stdout.flush()
    sys.stderr.flush()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- temporary folders and servers ------------------------------------------------------------------------------
@contextmanager
def workdir(keep: bool, base: str | None = None) -> Iterator[Path]:
    path = Path(base) if base else Path(tempfile.mkdtemp(prefix="dh-bench-"))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def s3_env(endpoint: str, bucket: str, prefix: str = "data") -> dict[str, str]:
    return {
        "DIGITALHUB_DATA_URL": f"s3://{bucket}/{prefix}",
        "DIGITALHUB_S3_ENDPOINT_URL": endpoint,
        "DIGITALHUB_S3_ACCESS_KEY_ID": "testing",
        "DIGITALHUB_S3_SECRET_ACCESS_KEY": "testing",
        "DIGITALHUB_S3_REGION": "us-east-1",
    }


# -- the machine ------------------------------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpu = ""
    mem_kb = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            dist: _version(dist)
            for dist in (
                "apache-airflow",
                "apache-airflow-providers-cncf-kubernetes",
                "apache-airflow-providers-standard",
                "airflow-provider-digitalhub",
                "pandas",
                "pyarrow",
                "SQLAlchemy",
                "moto",
                "boto3",
            )
        },
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# -- output -------------------------------------------------------------------------------------------------------
def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if unit in ("MB/s", "runs/s"):
        return f"{value:,.0f} {unit}"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g} {unit}".strip()


def table(figures: Sequence[FigureResult]) -> str:
    """The results as a markdown table."""
    header = ["figure", "what", "measured", "anchor", "anchor value", "ratio", "target", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for fig in figures:
        if fig.error:
            lines.append(f"| {fig.figure} | {fig.title} | error: {fig.error.splitlines()[0][:80]} | | | | | |")
        for r in fig.rows:
            met = "-" if r.met is None else ("yes" if r.met else "**no**")
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            cells = [
                r.figure,
                r.what + (f" ({r.note})" if r.note else ""),
                fmt(r.measured, r.unit),
                r.anchor_name or "-",
                fmt(r.anchor, r.unit) if r.anchor_name else "-",
                ratio,
                r.target or "-",
                met,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json(figures: Sequence[FigureResult], meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "figures": [asdict(f) for f in figures]}


def run_figure(figure: str, title: str, body: Callable[[FigureResult], None], cfg: Config) -> FigureResult:
    """Run one figure; an exception becomes the figure's error (the other figures still run)."""
    result = FigureResult(figure=figure, title=title)
    cfg.log(f"{figure}: {title}")
    start = time.perf_counter()
    try:
        body(result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.details["traceback"] = traceback.format_exc()
        cfg.log(f"{figure} failed: {result.error[:2000]}")
    result.seconds = round(time.perf_counter() - start, 1)
    cfg.log(f"{figure} done in {result.seconds:.0f}s")
    return result
