#!/usr/bin/env bash
# Create .venv (Python 3.11) with Airflow 3, the provider (editable) and the test tools,
# and install the Debian packages the tests use (PostgreSQL server, git) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
CNCF_VERSION=${CNCF_VERSION:-10.25.0}

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check \
  -e ".[airflow,data,s3,postgres,kubernetes,api,dev,docs]" \
  "apache-airflow==${AIRFLOW_VERSION}" "apache-airflow-providers-cncf-kubernetes==${CNCF_VERSION}"
# Bytecode for the provider, as a wheel install writes it (an editable install under
# PYTHONDONTWRITEBYTECODE would compile it again in every Airflow task process).
.venv/bin/python -m compileall -q digitalhub_provider
