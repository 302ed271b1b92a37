#!/usr/bin/env bash
# The main job on the embedded default (SQLite, local data folder, local launcher):
# set up, run the world-cities example DAG end to end with Airflow, show where the outputs are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh

export DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
export AIRFLOW_HOME=$DEMO_DIR/airflow
export DIGITALHUB_HOME=$DEMO_DIR/digitalhub
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME" "$DIGITALHUB_HOME"

.venv/bin/airflow db migrate >"$DEMO_DIR/db-migrate.log" 2>&1
.venv/bin/airflow dags test world_cities >"$DEMO_DIR/world_cities.log" 2>&1 || {
  tail -50 "$DEMO_DIR/world_cities.log"; echo "the DAG run failed: see $DEMO_DIR/world_cities.log"; exit 1; }

.venv/bin/python - <<'PY'
import os
import digitalhub_provider as dh

runs = dh.list_runs("demo")
print(f"\nDAG world_cities done. DigitalHub home: {os.environ['DIGITALHUB_HOME']}")
for run in sorted(runs, key=lambda r: r.metadata.created):
    print(f"  run {run.key}: {run.status.state} outputs={run.status.get('outputs')} results={run.results()}")
di = dh.get_dataitem("world-cities", project="demo")
print(f"\ndataitem {di.key}\n  stored at {di.spec['path']}\n  produced by {di.metadata.relationships[0].dest}")
print(di.as_df().head(5).to_string())
print(f"\nLook at them with:  DIGITALHUB_HOME={os.environ['DIGITALHUB_HOME']} .venv/bin/python -c "
      "\"import digitalhub_provider as dh; print(dh.get_dataitem('world-cities', project='demo').as_df())\"")
print(f"Task logs: {os.environ['DEMO_DIR']}/world_cities.log")
PY
