#!/usr/bin/env bash
# The lower-bounds job: the versions setup.cfg declares as the lowest are the tested ones.
# Reads the lower bounds of apache-airflow (extra `airflow`) and apache-airflow-providers-cncf-kubernetes
# (extra `kubernetes`) from setup.cfg, installs this checkout (editable) with the extras
# airflow,data,s3,kubernetes,serve,dev and exactly those two versions (everything else by pip's own resolution,
# under CONSTRAINTS below) in a virtualenv of its own, and runs there a smoke subset of the suite: the
# example DAGs under dag.test(), the operators, in-process runs, the Airflow internals canary, the
# connection extras and Kubernetes (KubernetesPodOperator against the stand-in API server).
# Why not lower: Airflow 3.1 lacks airflow.sdk.exceptions.AirflowNotFoundException, the float
# retry_exponential_backoff and the template internals of operators/airflow_internals.py (3.2.0 has
# them); cncf-kubernetes below 10.21.0 has no build_pod_request_obj(dry_run=), used by final_pod_dict.
#
# The virtualenv is kept between runs (LOWER_BOUNDS_VENV, default $TMPDIR/dh-lower-bounds/venv) and made
# anew only when what it was built from changes (the pins, the Python, setup.cfg's dependencies); pip's
# cache is used. Other versions, e.g. to look for the lowest that passes:
#   AIRFLOW_LOWER=3.2.0 CNCF_LOWER=10.5.0 bash scripts/lower-bounds.sh [pytest arguments]
# Needs Python 3.11 (PYTHON): the tests run their jobs on PYTHON3_11, in the worker's interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3.11}
VENV=${LOWER_BOUNDS_VENV:-${TMPDIR:-/tmp}/dh-lower-bounds/venv}
EXTRAS=airflow,data,s3,kubernetes,serve,dev
SMOKE=(tests/test_airflow_dags.py tests/test_airflow_operator.py tests/test_in_process.py
       tests/test_airflow_internals.py tests/test_connection_extras.py tests/test_kubernetes_launcher.py)
PIP=(-m pip install -q --disable-pip-version-check)
START=$SECONDS

# The lowest version setup.cfg declares for a distribution: the `>=` bound on its line in an extra.
declared_lower() {
  "$PY" - "$1" "$2" <<'PY'
import configparser, re, sys

extra, dist = sys.argv[1], sys.argv[2]
cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
for line in cfg["options.extras_require"][extra].splitlines():
    m = re.fullmatch(rf"\s*{re.escape(dist)}\s*((?:[<>=!~]=?\s*[\w.*]+\s*,?\s*)+)", line)
    if m:
        lower = re.search(r">=\s*([\w.]+)", m.group(1))
        if not lower:
            sys.exit(f"lower-bounds: setup.cfg's extra {extra!r} gives {dist} no '>=' bound: {line.strip()!r}")
        print(lower.group(1))
        break
else:
    sys.exit(f"lower-bounds: {dist} is not in setup.cfg's extra {extra!r}")
PY
}
AIRFLOW_LOWER=${AIRFLOW_LOWER:-$(declared_lower airflow apache-airflow)}
CNCF_LOWER=${CNCF_LOWER:-$(declared_lower kubernetes apache-airflow-providers-cncf-kubernetes)}
PINS=("apache-airflow==$AIRFLOW_LOWER" "apache-airflow-providers-cncf-kubernetes==$CNCF_LOWER")
# Constraints (pip -c) on what pip would otherwise take newer than the lowest Airflow works with, as that
# Airflow's own constraints file would (it pins the FastAPI of its release). Airflow 3.2.x does not cap FastAPI,
# and with FastAPI 0.137+ its execution API fails to start (dag.test(): pydantic "Model
# 'TITerminalStatePayload' needs a discriminator field"); Airflow 3.3.0 declares fastapi<0.137 itself.
# Space-separated; LOWER_BOUNDS_CONSTRAINTS="" for pip's plain resolution.
# shellcheck disable=SC2206
CONSTRAINTS=(${LOWER_BOUNDS_CONSTRAINTS-"fastapi<0.137"})

# What the virtualenv is built from: rebuilt from nothing when this changes (a leftover newer package
# would hide a too-low bound).
stamp() {
  "$PY" - "$EXTRAS" "${PINS[@]}" "constraints:" "${CONSTRAINTS[@]}" <<'PY'
import configparser, sys

cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
print(sys.version.split()[0], *sys.argv[1:])
print(cfg["options"].get("install_requires", ""), cfg["options"].get("python_requires", ""))
for name in ("options.extras_require", "options.entry_points"):
    print(sorted(cfg[name].items()) if cfg.has_section(name) else "")
PY
}
WANT=$(stamp)

# Processes of this job left running: any that runs the virtualenv's Python (pytest, Airflow's
# subprocesses, the stand-in's pods, moto) or that a pytest run of this job started in its session.
PYTEST_PID=""
leftovers() {
  local pid cmd sid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    sid=$(awk '{print $6}' "/proc/$pid/stat" 2>/dev/null) || sid=""
    if [ -n "$PYTEST_PID" ] && [ "$sid" = "$PYTEST_PID" ]; then echo "$pid"; continue; fi
    case "$cmd" in "$VENV/"*|*" $VENV/"*) echo "$pid" ;; esac
  done
}
cleanup() {
  local rc=$? pids
  pids=$(leftovers)
  if [ -n "$pids" ]; then
    echo "lower-bounds: stopping processes left running: $(echo $pids)"
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true; sleep 2
    # shellcheck disable=SC2086
    kill -9 $(leftovers) 2>/dev/null || true
  fi
  [ "$rc" = 0 ] || echo "lower-bounds: FAILED (exit $rc) on apache-airflow==$AIRFLOW_LOWER," \
    "apache-airflow-providers-cncf-kubernetes==$CNCF_LOWER"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n== lower-bounds [%ss] %s\n' "$((SECONDS - START))" "$*"; }

# Runs side by side (another session in this tree): the virtualenv is built while no run uses it.
mkdir -p "$(dirname "$VENV")"
exec 9>"$(dirname "$VENV")/.lock"
flock -x 9
if [ -f "$VENV/.lower-bounds-stamp" ] && [ "$(cat "$VENV/.lower-bounds-stamp")" = "$WANT" ]; then
  step "reusing $VENV (${PINS[*]})"
else
  step "fresh virtualenv $VENV ($PY): .[${EXTRAS}] ${PINS[*]}${CONSTRAINTS[*]:+, constraints: ${CONSTRAINTS[*]}}"
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
    echo "lower-bounds: $VENV exists and is no virtualenv: not removing it"; exit 1
  fi
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  LOG=$(dirname "$VENV")/pip.log
  printf '%s\n' "${CONSTRAINTS[@]}" >"$(dirname "$VENV")/constraints.txt"
  { "$VENV/bin/python" "${PIP[@]}" --upgrade pip &&
    "$VENV/bin/python" "${PIP[@]}" -c "$(dirname "$VENV")/constraints.txt" -e ".[$EXTRAS]" "${PINS[@]}"
  } >"$LOG" 2>&1 || { tail -40 "$LOG"; echo "lower-bounds: pip install failed (log: $LOG)"; exit 1; }
  echo "$WANT" >"$VENV/.lower-bounds-stamp"
  echo "$ROOT" >"$VENV/.lower-bounds-checkout"
fi
# The editable install points at the checkout it was made from: a clone elsewhere installs itself again.
if [ "$(cat "$VENV/.lower-bounds-checkout" 2>/dev/null || true)" != "$ROOT" ]; then
  LOG=$(dirname "$VENV")/pip.log
  "$VENV/bin/python" "${PIP[@]}" --no-deps -e . >"$LOG" 2>&1 || {
    tail -40 "$LOG"; echo "lower-bounds: pip install -e . failed (log: $LOG)"; exit 1; }
  echo "$ROOT" >"$VENV/.lower-bounds-checkout"
fi

flock -s 9  # used from here on, not changed
step "installed versions"
"$VENV/bin/python" - "$AIRFLOW_LOWER" "$CNCF_LOWER" <<'PY'
import sys
from importlib.metadata import version

from packaging.version import Version

import digitalhub_provider

print(f"Python {sys.version.split()[0]}; digitalhub_provider from {digitalhub_provider.__file__}")
names = ["apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk", "apache-airflow-providers-cncf-kubernetes",
         "apache-airflow-providers-common-compat", "kubernetes", "kubernetes_asyncio", "fastapi", "starlette", "cadwyn",
         "structlog", "SQLAlchemy", "pydantic", "pandas", "pyarrow"]
for name in names:
    print(f"  {name}=={version(name)}")
for name, want in zip(["apache-airflow", "apache-airflow-providers-cncf-kubernetes"], sys.argv[1:]):
    assert Version(version(name)) == Version(want), f"{name}=={version(name)} installed, not {want}"
PY

step "smoke tests on apache-airflow==$AIRFLOW_LOWER, apache-airflow-providers-cncf-kubernetes==$CNCF_LOWER"
export DIGITALHUB_TEST_ENVS_DIR=${DIGITALHUB_TEST_ENVS_DIR:-${TMPDIR:-/tmp}/dh-test-envs}
# In a session of its own (its id is pytest's pid), so that whatever it leaves is found and stopped.
setsid "$VENV/bin/python" -m pytest -p no:cacheprovider -q "${SMOKE[@]}" "$@" 9>&- &
PYTEST_PID=$!
rc=0
wait "$PYTEST_PID" || rc=$?
[ "$rc" = 0 ] || exit "$rc"
step "passed on Python $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'):" \
  "apache-airflow==$AIRFLOW_LOWER, apache-airflow-providers-cncf-kubernetes==$CNCF_LOWER"
