#!/usr/bin/env bash
# The whole test suite from a fresh machine: set up, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/ruff check digitalhub_provider tests dags bench
.venv/bin/ruff format --check digitalhub_provider tests dags bench
.venv/bin/mypy digitalhub_provider
.venv/bin/lint-imports
bash scripts/docs.sh  # the documentation site, strict: a warning fails
# The wheel and sdist, installed in a fresh virtualenv: the demo DAG, an SDK run, a runtime env.
bash scripts/wheel-check.sh
bash scripts/lower-bounds.sh  # the smoke tests on the lowest Airflow and cncf-kubernetes that setup.cfg declares
# Building the wheel and the lower-bounds install leave setuptools' egg-info in the checkout: a second copy of
# the distribution for the processes the tests start here (see scripts/setup-env.sh).
rm -rf airflow_provider_digitalhub.egg-info
# Runtime virtualenvs built by the tests are cached here between runs.
export DIGITALHUB_TEST_ENVS_DIR=${DIGITALHUB_TEST_ENVS_DIR:-${TMPDIR:-/tmp}/dh-test-envs}
exec .venv/bin/python -m pytest -p no:cacheprovider -q "$@"
