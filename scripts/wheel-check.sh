#!/usr/bin/env bash
# The installed-wheel job: what a new user gets from `pip install` of the release, not the checkout.
# Builds the wheel and the sdist (python -m build, from a copy of the checkout's files as a fresh clone
# holds them), checks both with twine, installs the wheel (not editable) with the extras
# airflow,data,s3 in a fresh virtualenv under a temporary folder, and from there, with the checkout out
# of reach (working directory outside it, no PYTHONPATH), checks:
#   a. `airflow providers list` shows the provider;
#   b. the demo DAG world_cities end to end (`airflow dags test`, as scripts/demo.sh), both runs COMPLETED;
#   c. an SDK run (docs/sdk.md, "The SDK in five minutes");
#   d. a runtime environment built from the installed package (a function with a requirement).
# Needs .venv with the dev extra (build, twine): scripts/setup-env.sh. WHEEL_CHECK_KEEP=1 keeps the
# temporary folder (its path is printed) to look at the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3.11}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
BUILDER=${WHEEL_CHECK_BUILDER:-$ROOT/.venv/bin/python} # a Python with build and twine
PIP=(-m pip install -q --disable-pip-version-check)

"$BUILDER" -c "import build, twine" 2>/dev/null || {
  echo "wheel-check: $BUILDER has no build/twine: run scripts/setup-env.sh (the dev extra)"; exit 1; }

# Nothing of the caller's environment may lead the checks to the checkout or to other stores.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE VIRTUAL_ENV AIRFLOW_HOME
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(DIGITALHUB_|AIRFLOW__)' || true)

WORK=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/dh-wheel-check.XXXXXX")" && pwd -P)
case "$WORK/" in "$(pwd -P)"/*) echo "wheel-check: the temporary folder $WORK is inside the checkout"; exit 1 ;; esac
VENV=$WORK/venv

# Processes of this job: any whose command line or working directory is under $WORK (a fresh mktemp).
leftovers() {
  local pid cmd cwd
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || cwd=""
    case "$cmd $cwd/" in *"$WORK/"*) echo "$pid" ;; esac
  done
}
cleanup() {
  local rc=$? pids
  pids=$(leftovers)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true; sleep 2
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
  fi
  if [ "${WHEEL_CHECK_KEEP:-}" = 1 ]; then echo "wheel-check: kept $WORK"; else rm -rf "$WORK"; fi
  [ "$rc" = 0 ] || echo "wheel-check: FAILED (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n== wheel-check [%ss] %s\n' "$SECONDS" "$*"; }
# Runs a command of the fresh venv from a folder outside the checkout; on failure shows its log's end.
in_work() {
  local log=$1; shift
  (cd "$WORK/run" && "$@") >"$WORK/$log" 2>&1 || {
    tail -60 "$WORK/$log"; echo "wheel-check: '$*' failed (log above: $log)"; return 1; }
}

step "build the wheel and the sdist (python -m build) from the checkout's files"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
while IFS= read -r -d '' f; do
  if [ -f "$f" ]; then printf '%s\0' "$f"; fi
done < <(git ls-files -z --cached --others --exclude-standard) | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$BUILDER" -m build --wheel --sdist --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 || {
  tail -40 "$WORK/build.log"; echo "wheel-check: python -m build failed"; exit 1; }
WHEEL=$(ls "$WORK"/dist/*.whl)
SDIST=$(ls "$WORK"/dist/*.tar.gz)
echo "built $(basename "$WHEEL") and $(basename "$SDIST")"

step "twine check --strict"
"$BUILDER" -m twine --no-color check --strict "$WHEEL" "$SDIST"

step "fresh virtualenv ($PY) outside the checkout; pip install the wheel[airflow,data,s3] apache-airflow==$AIRFLOW_VERSION"
"$PY" -m venv "$VENV"
{ "$VENV/bin/python" "${PIP[@]}" --upgrade pip &&
  "$VENV/bin/python" "${PIP[@]}" "$WHEEL[airflow,data,s3]" "apache-airflow==${AIRFLOW_VERSION}"
} >"$WORK/pip.log" 2>&1 || { tail -40 "$WORK/pip.log"; echo "wheel-check: pip install failed"; exit 1; }
(cd "$WORK/run" && "$VENV/bin/python" - "$VENV" <<'PY'
import json, sys, sysconfig
from importlib.metadata import distribution
from pathlib import Path

import digitalhub_provider

venv = Path(sys.argv[1])
site = Path(sysconfig.get_paths()["purelib"])
pkg = Path(digitalhub_provider.__file__).parent
assert site.is_relative_to(venv), (site, venv)
assert pkg == site / "digitalhub_provider", f"digitalhub_provider imported from {pkg}, not {site}"
direct = json.loads(distribution("airflow-provider-digitalhub").read_text("direct_url.json") or "{}")
assert not direct.get("dir_info", {}).get("editable"), direct
for name in ("py.typed", "stores/metadata/migrations/script.py.mako",
             "stores/metadata/migrations/versions/0001_initial.py"):
    assert (pkg / name).is_file(), f"{name} is not installed"
print(f"digitalhub_provider imported from {pkg} (installed from {direct.get('url')})")
PY
)

export AIRFLOW_HOME=$WORK/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$WORK/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export DIGITALHUB_HOME=$WORK/digitalhub
mkdir -p "$AIRFLOW_HOME" "$DIGITALHUB_HOME"

step "a. airflow db migrate; airflow providers list shows airflow-provider-digitalhub"
in_work db-migrate.log "$VENV/bin/airflow" db migrate
in_work providers.log "$VENV/bin/airflow" providers list -o json
grep -q '"airflow-provider-digitalhub"' "$WORK/providers.log" || {
  cat "$WORK/providers.log"; echo "wheel-check: the provider is not in airflow providers list"; exit 1; }
echo "airflow providers list: airflow-provider-digitalhub"

step "b. the demo DAG: airflow dags test world_cities (a copy of dags/ in $WORK/dags)"
cp -r "$ROOT/dags" "$WORK/dags"
find "$WORK/dags" -name __pycache__ -prune -exec rm -rf {} +
in_work world_cities.log "$VENV/bin/airflow" dags test world_cities
(cd "$WORK/run" && "$VENV/bin/python" - <<'PY'
import digitalhub_provider as dh

runs = dh.list_runs("demo")
tasks = {}
for run in runs:
    task = next(lab.split("=", 1)[1] for lab in run.metadata.labels if lab.startswith("airflow.task_id="))
    print(f"  run {run.key}: task {task} {run.status.state} results={run.results()}")
    assert run.status.state == "COMPLETED", (task, run.status.state, run.status.message)
    tasks[task] = run
assert sorted(tasks) == ["download", "report"] and len(runs) == 2, sorted(tasks)
report = tasks["report"].results()
assert report["cities"] > 0 and report["largest"] and len(report["top_countries"]) == 3, report
df = dh.get_dataitem("world-cities", project="demo").as_df()
assert len(df) == report["cities"], (len(df), report)
print(f"both runs COMPLETED; dataitem world-cities has {len(df)} rows")
PY
)

step "c. an SDK run (the SDK in five minutes of docs/sdk.md, local_execution=True)"
(cd "$WORK/run" && "$VENV/bin/python" - <<'PY'
import pandas as pd
import digitalhub_provider as dh

project = dh.get_or_create_project("my-project")
code = '''
import digitalhub_provider
from digitalhub_provider import handler

@handler(outputs=["data", "string", "provider"])
def func(di, param1: str):
    df = di.as_df()
    return df[df["pop"] > 100000], "some value " + param1, digitalhub_provider.__file__
'''
function = dh.new_function(project="my-project", name="python-function", kind="python",
                           code=code, handler="func", python_version="PYTHON3_11")
cities = project.log_dataitem(name="cities", kind="table",
                              data=pd.DataFrame({"city": ["Rome", "Trento", "Levico"], "pop": [2800000, 118000, 8000]}))
run = function.run(action="job", inputs={"di": cities.key}, parameters={"param1": "x"}, local_execution=True)
assert run.status.state == "COMPLETED", (run.status.state, run.status.message, run.logs())
data = run.output("data").as_df()
assert list(data["city"]) == ["Rome", "Trento"], data
assert run.result("string") == "some value x", run.results()
assert run.result("provider") == dh.__file__, (run.result("provider"), dh.__file__)  # the runner ran the wheel
assert dh.get_function("python-function", project="my-project").key == function.key
print(f"run {run.key}: {run.status.state}, data {list(data['city'])}, string {run.result('string')!r}")
PY
)

step "d. a runtime environment (requirements=['six']) built from the installed package"
export DIGITALHUB_ENVS_DIR=$WORK/envs
(cd "$WORK/run" && "$VENV/bin/python" - <<'PY'
import filecmp, os
from pathlib import Path

import digitalhub_provider as dh

code = '''
import sys

import six

import digitalhub_provider
from digitalhub_provider import handler

@handler(outputs=["six", "provider", "prefix", "airflow"])
def h():
    try:
        import airflow  # noqa: F401
        has_airflow = True
    except ImportError:
        has_airflow = False
    return six.__name__, digitalhub_provider.__file__, sys.prefix, has_airflow
'''
fn = dh.new_function(project="wheel-check", name="with-six", kind="python", code=code, handler="h",
                     requirements=["six"], python_version="PYTHON3_11")
lines = []
run = fn.run(action="job", local_execution=True, on_log=lines.append)
assert run.status.state == "COMPLETED", (run.status.state, run.status.message, run.logs())
assert any("building runtime environment" in line for line in lines), lines

envs = [p for p in Path(os.environ["DIGITALHUB_ENVS_DIR"]).iterdir() if p.is_dir()]
assert len(envs) == 1, envs
env = envs[0].resolve()
res = run.results()
assert res["six"] == "six" and res["airflow"] is False, res
assert Path(res["prefix"]).resolve() == env, (res["prefix"], env)
runner = env / "runner"
(pth,) = env.glob("lib/python*/site-packages/digitalhub_runner.pth")
assert Path(pth.read_text().strip()).resolve() == runner, pth.read_text()
copy = runner / "digitalhub_provider"
assert Path(res["provider"]).resolve() == copy / "__init__.py", res["provider"]

installed = Path(dh.__file__).resolve().parent


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


assert files(installed) == files(copy), files(installed) ^ files(copy)
_, differ, errors = filecmp.cmpfiles(installed, copy, sorted(files(installed)), shallow=False)
assert not differ and not errors, (differ, errors)
for name in ("stores/metadata/migrations/script.py.mako", "stores/metadata/migrations/versions/0001_initial.py"):
    assert (copy / name).is_file(), name
print(f"run {run.key}: {run.status.state} in {env.name}; the runner there ({copy}) is a copy of the "
      f"{len(files(installed))} installed files of {installed}, migrations included; no Airflow in it")
PY
)

step "no process left behind"
sleep 1
left=$(leftovers)
if [ -n "$left" ]; then
  # shellcheck disable=SC2086
  ps -o pid,args -p $(echo $left | tr ' ' ,) || true
  echo "wheel-check: processes left behind"; exit 1
fi
echo "none"

printf '\nwheel-check passed in %ss\n' "$SECONDS"
