"""PythonRuntimeOperator and DigitalHubHook: bad input, secrets, stale runs, kill, provider metadata."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import load_dag, load_dags, task_states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db")
TEST_DAGS = Path(__file__).parent / "dags"


@pytest.mark.parametrize(
    "case, words",
    [
        ("unknown_connection", "The DigitalHub connection 'no_such_connection' is not defined"),
        ("missing_function", "function 'ghost' does not exist in project 'demo' and the task gives no spec"),
        ("template_bad_key", "malformed key 'store://demo/oops'"),
        ("invalid_resources", "field 'resources': Input should be a valid dictionary"),
        ("invalid_backoff", "field 'tolerations'"),
        ("missing_input", "input 'di': store://demo/dataitem/table/nothing-here not found"),
    ],
)
def test_bad_input_fails_the_task_before_any_process(case: str, words: str, capfd: pytest.CaptureFixture[str]) -> None:
    module_dags = _bad_dags()
    dr = module_dags[case].test()
    out = capfd.readouterr()
    assert str(dr.state) == "failed"
    assert words in out.out + out.err
    assert [r.status.state for r in dh.list_runs("demo")] == []  # no run created, none left RUNNING


def _bad_dags() -> dict[str, Any]:
    return load_dags("bad_inputs.py", TEST_DAGS)


def test_secrets_stay_out_of_logs_xcom_templates_and_runspec(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import boto3

    secret = "s3cr3t-Value-9f8e7d"
    bucket = "dh-secrets-test"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="ak-test", aws_secret_access_key=secret,
                      region_name="us-east-1")  # fmt: skip
    s3.create_bucket(Bucket=bucket)
    conn = {
        "conn_type": "digitalhub", "login": "ak-test", "password": secret,
        "extra": {"data_url": f"s3://{bucket}/data", "s3_endpoint_url": s3_endpoint,
                  "ui_url": "https://console.example/"},
    }  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_DH_S3", json.dumps(conn))
    dr = load_dag("secrets.py", TEST_DAGS).test()
    out = capfd.readouterr()
    assert str(dr.state) == "success", task_states(dr)
    logs = out.out + out.err
    assert "environment has" in logs and "DIGITALHUB_S3_SECRET_ACCESS_KEY" in logs  # the runner got it...
    assert secret not in logs  # ...but its value is never printed
    values = xcoms("secrets_on_s3", dr.run_id)
    assert values and secret not in json.dumps(list(values.values()), default=str)
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rendered = [r.rendered_fields for r in session.scalars(select(RTIF).where(RTIF.dag_id == "secrets_on_s3"))]
    assert rendered and secret not in json.dumps(rendered, default=str)
    run_id = values[("task", "return_value")]["run_id"]
    runspec = s3.get_object(Bucket=bucket, Key=f"data/runs/{run_id}/runspec.json")["Body"].read().decode()
    assert secret not in runspec and "ak-test" not in runspec
    assert values[("task", "_link_DigitalHubRunLink")] == f"https://console.example/#/projects/demo/runs/{run_id}"
    table = values[("task", "table")]
    assert table.startswith("store://demo/dataitem/table/table:")


def _context(task: Any, try_number: int = 1) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="manual_dag", run_id="manual_run", task_id=task.task_id, map_index=-1, try_number=try_number,
        xcom_push=lambda key, value: pushed.__setitem__(key, value), pushed=pushed,
    )  # fmt: skip
    return {"ti": ti, "dag": None}


SLOW = "import time\n\ndef h():\n    print('sleeping', flush=True)\n    time.sleep(60)\n"


def test_on_kill_kills_the_process_and_stops_the_run() -> None:
    from digitalhub_provider.operators import PythonRuntimeOperator

    op = PythonRuntimeOperator(task_id="slow", project="demo", code=SLOW, handler="h", python_version="PYTHON3_11",
                               in_process=False)  # fmt: skip
    errors: list[BaseException] = []

    def target() -> None:
        try:
            op.execute(_context(op))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 60
    while (op._proc is None or "sleeping" not in op._proc.log_path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert op._proc is not None, errors
    pid = op._proc.pid
    op.on_kill()
    thread.join(30)
    assert not thread.is_alive()
    run = dh.list_runs("demo")[0]
    assert run.status.state == "STOPPED"
    assert errors and "ended STOPPED" in str(errors[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_retry_after_a_worker_crash_marks_the_stale_run_error() -> None:
    from digitalhub_provider.operators import PythonRuntimeOperator
    from tests.runs import running_run

    op = PythonRuntimeOperator(task_id="t", project="demo", code="def h():\n    return 7\n", handler="h",
                               python_version="PYTHON3_11")  # fmt: skip
    # try 1: the run was started, then the worker died (a process that is still alive, and a RUNNING run)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    from digitalhub_provider.sdk.context import get_context

    ctx = get_context()
    fn = op.resolve_function(ctx)
    labels = op.run_labels(_context(op, try_number=1))
    stale = running_run(ctx, fn, labels=labels, status={"pid": orphan.pid, "host": os.uname().nodename})
    # try 2 runs normally
    ctx2 = _context(op, try_number=2)
    summary = op.execute(ctx2)
    assert summary["state"] == "COMPLETED" and ctx2["ti"].pushed["output"] == 7
    stale_now = dh.get_run(stale.key)
    assert stale_now.status.state == "ERROR"
    assert "the worker running try 1 stopped before the run finished" in stale_now.status.message
    assert orphan.wait(timeout=15) == -signal.SIGTERM
    assert sorted(r.status.state for r in dh.list_runs("demo")) == ["COMPLETED", "ERROR"]


def test_function_versions_follow_the_dag_spec() -> None:
    """The same spec reuses the stored version; a changed one saves a new version; an invalid one is
    refused even when the function exists (validation is skipped only for the stored spec itself)."""
    from airflow.sdk.exceptions import AirflowException

    from digitalhub_provider.operators import PythonRuntimeOperator

    def run(code: str, **extra: Any) -> dict[str, Any]:
        op = PythonRuntimeOperator(task_id="v", project="demo", function="versioned", code=code, handler="h",
                                   python_version="PYTHON3_11", **extra)  # fmt: skip
        return op.execute(_context(op))

    assert run("def h():\n    return 1\n")["results"] == {"output": 1}
    assert run("def h():\n    return 1\n")["results"] == {"output": 1}
    assert len(dh.list_functions("demo", all_versions=True)) == 1
    assert run("def h():\n    return 2\n")["results"] == {"output": 2}
    versions = dh.list_functions("demo", all_versions=True)
    assert [v.spec["code"] for v in versions] == ["def h():\n    return 2\n", "def h():\n    return 1\n"]
    with pytest.raises(AirflowException, match="requirements"):
        run("def h():\n    return 2\n", requirements="six")  # a string, not a list
    assert len(dh.list_functions("demo", all_versions=True)) == 2
    assert len(dh.list_runs("demo")) == 3


def test_backoff_limit_becomes_retries_unless_the_author_set_them() -> None:
    from digitalhub_provider.operators import PythonRuntimeOperator

    op = PythonRuntimeOperator(task_id="a", project="demo", function="f", backoff_limit=4)
    assert op.retries == 4 and op.retry_exponential_backoff
    op = PythonRuntimeOperator(task_id="b", project="demo", function="f", backoff_limit=4, retries=1)
    assert op.retries == 1
    assert op.task_arguments() == {"backoff_limit": 4}


def test_relative_code_src_resolves_against_the_dag_folder() -> None:
    dag = load_dag("world_cities.py")
    task = dag.get_task("download")
    task._dag_folder = str(Path(dag.fileloc).parent)
    assert task.function_spec()["code_src"] == str(Path(dag.fileloc).parent / "src" / "cities.py")


def test_hook_embedded_default_connection_and_test_connection(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, dh_home: Path
) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from digitalhub_provider.hooks.digitalhub import DigitalHubHook

    hook = DigitalHubHook()
    settings = hook.get_settings()
    assert settings.metadata_url == f"sqlite:///{dh_home / 'metadata.db'}" and settings.data_url == str(
        dh_home / "data"
    )
    assert hook.test_connection()[0] is True
    with pytest.raises(AirflowNotFoundException, match="'nope' is not defined"):
        DigitalHubHook("nope").get_settings()

    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                 region_name="us-east-1").create_bucket(Bucket="hook-bucket")  # fmt: skip
    good = {"conn_type": "digitalhub", "login": "k", "password": "s",
            "extra": {"data_url": "s3://hook-bucket/x", "s3_endpoint_url": s3_endpoint,
                      "metadata_url": f"sqlite:///{dh_home / 'other.db'}"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_DH_GOOD", json.dumps(good))
    ok, message = DigitalHubHook("dh_good").test_connection()
    assert ok, message
    bad = dict(good, extra={**good["extra"], "s3_endpoint_url": "http://127.0.0.1:9"})
    monkeypatch.setenv("AIRFLOW_CONN_DH_BAD", json.dumps(bad))
    ok, message = DigitalHubHook("dh_bad").test_connection()
    assert not ok and "does not answer" in message


def test_metadata_password_goes_into_the_url_only_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook

    conn = {"conn_type": "digitalhub", "extra": {"metadata_url": "postgresql+psycopg2://dh@db:5432/dh",
                                                   "metadata_password": "pg-pass-123"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_DH_PG", json.dumps(conn))
    settings = DigitalHubHook("dh_pg").get_settings()
    assert settings.metadata_url == "postgresql+psycopg2://dh:pg-pass-123@db:5432/dh"
    assert "pg-pass-123" not in repr(settings) and "pg-pass-123" not in str(settings)
    assert "postgresql+psycopg2://dh:***@db:5432/dh" in repr(settings)


def test_provider_is_registered_with_its_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    runtime = ProvidersManagerTaskRuntime()  # what a task resolves hooks with
    assert "airflow-provider-digitalhub" in runtime.providers
    assert "digitalhub" in runtime.hooks
    pm = ProvidersManager()  # the API server's connection forms
    widgets = pm.connection_form_widgets
    assert "extra__digitalhub__metadata_url" in widgets and "extra__digitalhub__data_url" in widgets
    assert widgets["extra__digitalhub__metadata_password"].is_sensitive
    behaviour = pm.field_behaviours["digitalhub"]
    assert behaviour["relabeling"]["password"] == "S3 secret access key"


def test_importing_the_operators_stays_light() -> None:
    """What a DAG file imports from us adds no heavy library to what airflow.sdk already loads."""
    code = (
        "import sys\n"
        "from airflow.sdk import DAG, BaseOperator, Param\n"
        "before = set(sys.modules)\n"
        "import digitalhub_provider, digitalhub_provider.operators\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "heavy = {'pandas', 'pyarrow', 'boto3', 'botocore', 'kubernetes', 'kfp', 'mlrun', 'sqlalchemy', 'alembic'}\n"
        "import json; print(json.dumps([sorted(new & heavy), sorted(new)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, new = json.loads(out.stdout)
    assert heavy == []
    assert set(new) <= {"airflow", "digitalhub_provider"}


def test_the_function_source_is_not_a_jinja_template() -> None:
    """Python source keeps its own braces (``{{`` in an f-string, ``{#``); the run's parameters are templated.
    The function's spec is never rendered: a spec that changed from run to run would be a new version."""
    module = load_dag("templating.py", TEST_DAGS)
    dr = module.test()
    assert str(dr.state) == "success", task_states(dr)
    assert xcoms("source_not_templated", dr.run_id)[("t", "output")] == "{braces} kept for Ada"
    assert "{{braces}}" in dh.get_function("t", project="demo").spec["code"]


@pytest.mark.parametrize("native", [False, True])
def test_plain_strings_skip_jinja_and_render_as_jinja_would(native: bool) -> None:
    """A string without any Jinja tag is not compiled (Airflow compiles each one, ~1 ms); every
    string still renders exactly as Airflow's own rendering does, native rendering included."""
    from airflow.sdk import DAG, BaseOperator

    from digitalhub_provider.operators import PythonRuntimeOperator

    with DAG("render_plain", schedule=None, render_template_as_native_obj=native) as dag:
        op = PythonRuntimeOperator(task_id="t", project="demo", function="f", code="x", handler="h")
    env = dag.get_template_env()
    compiled: list[str] = []
    from_string = env.from_string
    env.from_string = lambda source, *a, **k: compiled.append(source) or from_string(source, *a, **k)  # type: ignore[method-assign]
    context: Any = {"ds": "2026-01-01", "params": {}}
    texts = ["bench", "1", "a}} b", "50% {x}", "line\n", "a\r\nb", "{{ ds }}", "{# note #}x", "{% if 1 %}y{% endif %}"]
    for text in texts:
        compiled.clear()
        ours = op.render_template(text, context, env)
        if not native and text in ("bench", "1", "a}} b", "50% {x}"):
            assert compiled == [], text  # returned as it is
        else:
            assert compiled, text  # Jinja rendered it
        airflows = BaseOperator.render_template(op, text, context, env)
        assert (ours, type(ours)) == (airflows, type(airflows)), text
    assert op.render_template({"p": ["{{ ds }}", "plain"]}, context, env) == {"p": ["2026-01-01", "plain"]}


def test_arguments_left_unset_are_not_templated_fields_of_the_task() -> None:
    """Airflow stores every templated field of a task once rendered: those a task leaves unset are not
    its fields; one set later (a value or an XComArg) is, and still makes its upstream dependency."""
    from airflow.sdk import DAG

    from digitalhub_provider.operators import PythonRuntimeOperator
    from digitalhub_provider.operators.base import RUN_TEMPLATE_FIELDS

    with DAG("unset_fields", schedule=None):
        up = PythonRuntimeOperator(task_id="up", project="demo", function="f", code="x", handler="h")
        op = PythonRuntimeOperator(task_id="t", project="demo", function="f", code="x", handler="h",
                                   parameters={"day": "{{ ds }}"})  # fmt: skip
    assert op.template_fields == ("project", "function", "parameters")
    assert PythonRuntimeOperator.template_fields == RUN_TEMPLATE_FIELDS  # mapped tasks and the UI read it
    op.values = ["v"]
    op.inputs = {"di": up.output["data"]}
    assert op.template_fields == ("project", "function", "inputs", "parameters", "values")
    assert op.upstream_task_ids == {"up"}


def test_mapped_tasks_run_one_run_each_and_store_only_their_given_fields() -> None:
    """``.expand`` over parameters: one DigitalHub run per map index, each result in that index's XCom,
    the templated parameter rendered, and Airflow's rendered fields holding only what the task gave."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dr = load_dag("mapped.py", TEST_DAGS).test()
    assert str(dr.state) == "success", task_states(dr)
    with create_session() as session:
        rows = session.scalars(select(XComModel).where(XComModel.dag_id == "mapped_runs", XComModel.run_id == dr.run_id,
                                                       XComModel.key == "output")).all()  # fmt: skip
        outputs = {r.map_index: XComModel.deserialize_value(r) for r in rows}
        rendered = {r.map_index: r.rendered_fields for r in session.scalars(
            select(RTIF).where(RTIF.dag_id == "mapped_runs", RTIF.run_id == dr.run_id))}  # fmt: skip
    assert outputs == {0: "hello Ada", 1: "hello Bob", 2: "hello Eve"}
    assert rendered[0] == {"project": "demo", "function": "mapped-hello", "parameters": {"who": "Ada"}}
    runs = dh.list_runs(project="demo", function_name="mapped-hello")
    assert sorted((r.spec["parameters"]["who"], r.status.state) for r in runs) == [
        ("Ada", "COMPLETED"), ("Bob", "COMPLETED"), ("Eve", "COMPLETED")]  # fmt: skip


def test_the_hook_masks_the_connections_secrets_in_airflows_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The metadata password (also as the URL holds it, percent-encoded) and the MLRun token reach
    Airflow's secrets masker: a task log line holding any of them is redacted."""
    from airflow.sdk.log import redact

    from digitalhub_provider.hooks.digitalhub import DigitalHubHook

    conn = {"conn_type": "digitalhub", "extra": {"metadata_url": "postgresql+psycopg2://dh@db:5432/dh",
            "metadata_password": "pg@mask/4711", "mlrun_api": "http://mlrun:8080",
            "mlrun_token": "mlrun-token-0815"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_DH_MASKED", json.dumps(conn))
    assert "pg@mask/4711" in redact("before: pg@mask/4711")  # nothing masks it yet
    settings = DigitalHubHook("dh_masked").get_settings()
    encoded = settings.metadata_url.split("dh:", 1)[1].split("@db", 1)[0]
    assert encoded != "pg@mask/4711" and "4711" in encoded  # the URL holds it percent-encoded
    line = f"connecting to {settings.metadata_url} with token mlrun-token-0815 (pg@mask/4711)"
    redacted = str(redact(line))
    assert "4711" not in redacted and "mlrun-token-0815" not in redacted
    assert "connecting to postgresql+psycopg2://dh:" in redacted


def test_settings_never_show_their_credentials() -> None:
    from digitalhub_provider.config import Settings

    settings = Settings(
        metadata_url="https://api-user:api-pass-1@dh.example/api", data_url="s3://bucket/dh",
        s3_access_key_id="AKIA-key-2", s3_secret_access_key="s3-secret-3", mlrun_token="mlrun-4",
    )  # fmt: skip
    for text in (repr(settings), str(settings), f"{settings}"):
        assert not any(secret in text for secret in ("api-pass-1", "AKIA-key-2", "s3-secret-3", "mlrun-4")), text
        assert "metadata_url='https://api-user:***@dh.example/api'" in text and "s3://bucket/dh" in text


def test_a_large_result_is_stored_with_the_run_and_in_xcom_once(dh_home: Path) -> None:
    """A result over 64 KiB: a file with the run, a reference in the run's record and in the summary
    XCom, the value itself in its own XCom only; small results stay in place."""
    module = load_dag("large_result.py", TEST_DAGS)
    dr = module.test()
    assert str(dr.state) == "success", task_states(dr)
    pushed = xcoms("large_result", dr.run_id)
    assert pushed[("t", "text")] == "x" * 200_000 and pushed[("t", "size")] == 200_000
    summary = pushed[("t", "return_value")]["results"]
    assert summary["size"] == 200_000
    ref = summary["text"]["stored_result"]
    assert ref["bytes"] == 200_002 and ref["path"].endswith("/results/text.json")
    assert sum("x" * 1000 in json.dumps(value) for value in pushed.values()) == 1  # the value once in XCom
    run = dh.list_runs("demo")[0]
    assert run.status.results["text"] == {"stored_result": ref}  # the record holds the reference only
    assert run.result("text") == "x" * 200_000 and run.results() == {"text": "x" * 200_000, "size": 200_000}
    dh.delete_run(run.key)
    assert not (dh_home / "data" / "runs" / run.id).exists()
