#!/usr/bin/env bash
# Create .venv (Python 3.11) with Airflow 3, the provider (editable) and the test tools,
# and install the Debian packages the tests use (PostgreSQL server, git, Chromium and its driver) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
AIRFLOW_VERSION=${AIRFLOW_VERSION:-3.3.2}
CNCF_VERSION=${CNCF_VERSION:-10.25.0}
CELERY_VERSION=${CELERY_VERSION:-3.26.0}  # the CeleryExecutor of the scale-out tests (Airflow on PostgreSQL: asyncpg;
# celery 5.7 dropped celery.backends.database.retry, which the provider imports)
OPENLINEAGE_VERSION=${OPENLINEAGE_VERSION:-2.20.3}  # the lineage tests (the openlineage extra)

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# the Celery scale-out tests (tests/test_celery.py): Redis as the broker
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# the console's browser tests (tests/test_console_browser.py): Debian's Chromium and its driver
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
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
  -e ".[airflow,data,s3,postgres,kubernetes,api,serve,openlineage,dev,docs]" \
  "apache-airflow==${AIRFLOW_VERSION}" "apache-airflow-providers-cncf-kubernetes==${CNCF_VERSION}" \
  "apache-airflow-providers-celery==${CELERY_VERSION}" "celery>=5.5,<5.7" "asyncpg>=0.29" \
  "apache-airflow-providers-openlineage==${OPENLINEAGE_VERSION}"
# The editable install leaves setuptools' egg-info in the checkout: a second copy of the distribution for any
# process started here (the current directory is on sys.path), whose duplicate plugin makes Airflow stop
# registering the plugins after it (OpenLineage's among them).
rm -rf airflow_provider_digitalhub.egg-info
# Bytecode for the provider, as a wheel install writes it (an editable install under
# PYTHONDONTWRITEBYTECODE would compile it again in every Airflow task process).
.venv/bin/python -m compileall -q digitalhub_provider
