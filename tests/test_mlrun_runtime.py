"""The mlrun runtime: real MLRun local runs in the mlrun environment (Python 3.11 + mlrun 1.12),
through the SDK and through MlrunJobOperator under ``dag.test()``.

The mlrun environment is built once (a few minutes) and cached in ``DIGITALHUB_TEST_ENVS_DIR``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

import digitalhub_provider as dh
from digitalhub_provider.entities import Run
from digitalhub_provider.errors import EntityError
from tests.airflow_helpers import DAGS, load_dag, task_states, xcoms

EMPLOYEES = DAGS / "data" / "employees.csv"
PIPELINE = DAGS / "src" / "mlrun_pipeline.py"

TRAIN = """
import mlrun
import pandas as pd


def train(context, data: mlrun.DataItem, factor: int, label: str):
    df = data.as_df()
    df["scaled"] = df["SALARY"] * factor
    context.log_dataset("scaled", df=df[["EMPLOYEE_ID", "scaled"]], format="csv", index=False)
    with open("model.pkl", "wb") as fh:
        fh.write(b"not really a model")
    context.log_model(
        "model", model_file="model.pkl", framework="sklearn", algorithm="mean",
        metrics={"mae": 0.5}, parameters={"factor": factor},
    )
    context.log_artifact("report", body=f"{label}: {len(df)} rows", format="txt")
    context.log_result("total", int(df["scaled"].sum()))
    context.log_result("label", label)
    context.log_result("unwanted", 1)
"""

BAD = """
import os

import pandas as pd


def boom(context):
    raise ValueError("the handler broke")


def logs_then_fails(context):
    context.log_dataset("partial", df=pd.DataFrame({"a": [1, 2]}))
    raise RuntimeError("after logging")


def two_outputs(context):
    context.log_dataset("dataset", df=pd.DataFrame({"a": [1, 2]}))
    context.log_artifact("report", body="some text", format="txt")
    context.log_result("rows", 2)


def removes_a_file(context):
    context.log_dataset("dataset", df=pd.DataFrame({"a": [1, 2]}))
    report = context.log_artifact("report", body="some text", format="txt")
    os.remove(report.target_path)
"""


def _employees() -> Any:
    return dh.new_dataitem(project="demo", name="employees", kind="table", path=str(EMPLOYEES))


def _rels(entity: Any) -> list[dict[str, str]]:
    return [r.to_dict() for r in entity.metadata.relationships or []]


# -- the seed's example, through the SDK ----------------------------------------------------------
def test_seed_downloader_through_the_sdk(dh_home: Path) -> None:
    project = dh.get_or_create_project("demo")
    dataitem = project.new_dataitem(name="url-dataitem", kind="table", path=str(EMPLOYEES))
    function = project.new_function(
        name="mlrun-downloader", kind="mlrun", source={"source": str(PIPELINE)}, handler="downloader",
        image="mlrun/mlrun",
    )  # fmt: skip
    assert function.spec["source"] == {"source": str(PIPELINE)}
    run = function.run("job", inputs={"url": dataitem.key}, outputs={"dataset": "dataset"})
    run.refresh()
    assert run.status.state == "COMPLETED", run.status.message
    assert run.kind == "mlrun+job:run" and run.spec["task"].startswith("store://demo/task/mlrun+job/")

    dataset = run.output("dataset")
    assert dataset.kind == "table" and dataset.spec["path"].endswith("/data.parquet")
    assert dataset.spec["path"].startswith(str(dh_home / "data" / "demo" / "dataitem" / "dataset"))
    df = dataset.as_df()
    source = pd.read_csv(EMPLOYEES)
    assert len(df) == len(source) == 20 and dataset.status.get("rows") == 20
    assert list(df.columns) == [c.lower() for c in source.columns]
    assert df["salary"].tolist() == source["SALARY"].tolist()
    assert {"name": "salary", "type": "int64"} in dataset.spec["schema"]["fields"]
    assert {"type": "produced_by", "dest": run.key} in _rels(dh.get_dataitem("dataset", project="demo"))
    assert {"type": "consumes", "dest": dataitem.key} in _rels(run)

    # every MLRun result (none named in values), plus MLRun's own run record
    assert run.result("rows") == 20
    record = run.result("mlrun_run")
    assert record["status"]["state"] == "completed" and record["spec"]["handler"] == "downloader"
    assert record["metadata"]["project"] == "demo"
    [logged] = record["status"]["artifacts"]  # the dataset's record, without its data (preview, statistics)
    assert logged["kind"] == "dataset" and not {"preview", "stats"} & set(logged["status"])
    assert "logged 20 rows" in run.logs()


def test_parameters_artifact_kinds_renames_and_values(dh_home: Path) -> None:
    employees = _employees()
    fn = dh.new_function(project="demo", name="train", kind="mlrun", source={"code": TRAIN}, handler="train")
    run = fn.run(
        action="job", inputs={"data": employees.key}, parameters={"factor": 3, "label": "Payroll"},
        outputs={"model": "salary-model", "report": "salary-report"}, values=["total", "label"],
    )  # fmt: skip
    assert run.state == "COMPLETED", run.status.message
    assert set(run.status.get("outputs")) == {"scaled", "salary-model", "salary-report"}

    # a dataset logged as CSV: a table dataitem, Parquet on the data store
    scaled = run.output("scaled")
    assert scaled.kind == "table" and scaled.spec["path"].endswith("/data.parquet")
    assert scaled.as_df()["scaled"].tolist() == [s * 3 for s in pd.read_csv(EMPLOYEES)["SALARY"]]

    model = run.output("salary-model")
    assert model.ENTITY_TYPE == "model" and model.kind == "model" and model.name == "salary-model"
    assert model.spec["path"].endswith("/model.pkl")
    assert model.spec["framework"] == "sklearn" and model.spec["algorithm"] == "mean"
    assert model.spec["metrics"] == {"mae": 0.5} and model.spec["parameters"] == {"factor": 3}
    assert Path(model.download()).read_bytes() == b"not really a model"
    assert (Path(model.spec["path"]).parent / "model_spec.yaml").is_file()  # MLRun's model folder kept whole

    report = run.output("salary-report")
    assert report.ENTITY_TYPE == "artifact" and report.kind == "artifact"
    assert Path(report.download()).read_text() == "Payroll: 20 rows"
    for entity in (scaled, model, report):
        assert {"type": "produced_by", "dest": run.key} in _rels(entity)

    # values picks the MLRun results; the MLRun run record keeps all of them, and the params
    assert set(run.results()) == {"total", "label", "mlrun_run"}
    assert run.result("total") == 3 * int(pd.read_csv(EMPLOYEES)["SALARY"].sum())
    record = run.result("mlrun_run")
    assert record["spec"]["parameters"] == {"factor": 3, "label": "Payroll"}
    assert record["status"]["results"]["unwanted"] == 1
    assert record["spec"]["inputs"]["data"] == str(EMPLOYEES)  # a local data store's file is read in place


SEED_STYLE = """
import mlrun
import pandas as pd


@mlrun.handler(outputs=["dataset", "greeting"])
def hello(context, who: str):
    return pd.DataFrame({"who": [who, who.upper()]}), "hello " + who
"""


def test_code_sources_base64_and_zip_archive(tmp_path: Path, dh_home: Path) -> None:
    # the seed's style: outputs logged by MLRun's own @mlrun.handler from what the handler returns
    fn = dh.new_function(
        project="demo", name="b64", kind="mlrun", source={"base64": base64.b64encode(SEED_STYLE.encode()).decode()},
        handler="hello",
    )  # fmt: skip
    run = fn.run(action="job", parameters={"who": "mlrun"})
    assert run.state == "COMPLETED", run.status.message
    assert run.result("greeting") == "hello mlrun"
    assert run.output("dataset").kind == "table" and run.output("dataset").as_df()["who"].tolist() == ["mlrun", "MLRUN"]

    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/__init__.py", "")
        zf.writestr("pkg/helpers.py", "def shout(s):\n    return s.upper()\n")
        zf.writestr(
            "pkg/steps.py",
            "from pkg.helpers import shout\n\ndef run(context, who: str):\n"
            "    context.log_result('greeting', shout('hello ' + who))\n",
        )
    fn = dh.new_function(
        project="demo", name="zipped", kind="mlrun", source={"source": f"zip+file://{archive}"},
        handler="pkg.steps:run",
    )  # fmt: skip
    run = fn.run(action="job", parameters={"who": "zip"})
    assert run.state == "COMPLETED", run.status.message
    assert run.result("greeting") == "HELLO ZIP"


def test_build_action_readies_the_mlrun_environment_without_airflow(dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="env", kind="mlrun", source={"code": BAD}, handler="boom")
    run = fn.run(action="build")
    assert run.state == "COMPLETED" and run.kind == "mlrun+build:run", run.status.message
    from digitalhub_provider.launchers.envs import built_environment
    from digitalhub_provider.sdk.context import get_context

    # the function's next version runs in the environment the build made
    built = dh.get_function("env", project="demo")
    assert built.spec["image"] == run.results()["image"] and built.spec["source"] == fn.spec["source"]
    python = built_environment(str(get_context().settings.envs_dir), run.results()["image"].removeprefix("venv://"))
    probe = "import sys, mlrun, pandas, numpy; print(sys.version_info[:2], mlrun.__version__)"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "(3, 11) 1.12.1", out.stderr[-2000:]
    assert subprocess.run([python, "-c", "import airflow"], capture_output=True).returncode != 0
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout  # the runner's requirements meet mlrun's pins


# -- the operator ------------------------------------------------------------------------------------
@pytest.mark.usefixtures("airflow_db")
def test_example_dag_downloader_under_dag_test(dh_home: Path) -> None:
    dag = load_dag("mlrun_downloader.py")
    dr = dag.test()
    assert str(dr.state) == "success", task_states(dr)

    x = xcoms("mlrun_downloader", dr.run_id)
    dataset = dh.get_dataitem("dataset", project="demo")
    assert x[("downloader", "dataset")] == dataset.key and x[("downloader", "rows")] == 20
    source = pd.read_csv(EMPLOYEES)
    assert x[("summary", "employees")] == 20
    assert x[("summary", "departments")] == source["DEPARTMENT_ID"].nunique()
    assert x[("summary", "top_salary")] == source["SALARY"].max()

    summary = x[("downloader", "return_value")]
    assert summary["state"] == "COMPLETED" and summary["outputs"] == {"dataset": dataset.key}
    assert set(summary["results"]) == {"rows", "mlrun_run"}
    assert x[("downloader", "mlrun_run")]["status"]["state"] == "completed"  # plain JSON (no NaN) in XCom
    run = dh.get_run(summary["run_key"])
    assert run.kind == "mlrun+job:run"
    assert {"type": "produced_by", "dest": run.key} in _rels(dataset)
    url = dh.get_dataitem("employees-url", project="demo")
    assert {"type": "consumes", "dest": url.key} in _rels(run)
    assert {"airflow.dag_id=mlrun_downloader", "airflow.task_id=downloader"} <= set(run.metadata.labels or [])
    fn = dh.get_function("mlrun-downloader", project="demo")
    assert fn.kind == "mlrun" and fn.spec["source"] == {"source": str(PIPELINE)}  # resolved against the DAG folder
    assert fn.spec["handler"] == "downloader" and fn.spec["image"] == "mlrun/mlrun"


def test_operator_spec_source_and_templates() -> None:
    from digitalhub_provider.operators import MlrunJobOperator

    op = MlrunJobOperator(
        task_id="t", project="demo", source={"source": "src/pipeline.py"}, handler="h", tag="v1",
        requirements=["six"],
    )  # fmt: skip
    assert op.function_kind == "mlrun" and op.entity_type == "function"
    assert op.has_source(op.function_spec())
    assert not op.has_source({"source": {"lang": "python"}}) and not op.has_source({})
    assert op.function_spec() == {
        "source": {"source": "src/pipeline.py"}, "handler": "h", "tag": "v1", "requirements": ["six"],
    }  # fmt: skip
    op._dag_folder = "/dags"
    assert op.function_spec()["source"] == {"source": "/dags/src/pipeline.py"}
    for kept in ("git+https://host/repo.git#main", "zip+s3://bucket/code.zip", "/abs/pipeline.py"):
        op.source = {"source": kept}
        assert op.function_spec()["source"] == {"source": kept}
    op.source = {"code": "def h(context): pass"}
    assert op.function_spec()["source"] == {"code": "def h(context): pass"}
    # the run's arguments are templated, never the function's spec (a rendered spec would be a new version)
    assert {"project", "function", "inputs", "parameters", "outputs"} <= set(MlrunJobOperator.template_fields)
    assert not {"source", "handler", "image", "tag", "requirements"} & set(MlrunJobOperator.template_fields)
    assert op.template_fields == ("project",)  # the task's own: the arguments it sets


def test_importing_the_mlrun_operator_stays_light() -> None:
    code = (
        "import sys, json\n"
        "from airflow.sdk import DAG\n"
        "before = set(sys.modules)\n"
        "from digitalhub_provider.operators import MlrunJobOperator\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(new)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(out.stdout)) <= {"airflow", "digitalhub_provider"}
    assert subprocess.run([sys.executable, "-c", "import mlrun"], capture_output=True).returncode != 0


def _context(task: Any) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="manual_dag", run_id="manual_run", task_id=task.task_id, map_index=-1, try_number=1,
        xcom_push=lambda key, value: pushed.__setitem__(key, value), pushed=pushed,
    )  # fmt: skip
    return {"ti": ti, "dag": None}


def test_operator_fails_the_task_with_mlruns_message(dh_home: Path) -> None:
    from airflow.sdk.exceptions import AirflowException

    from digitalhub_provider.operators import MlrunJobOperator

    op = MlrunJobOperator(task_id="boom", project="demo", source={"code": BAD}, handler="boom")
    with pytest.raises(AirflowException, match=r"ended ERROR: the MLRun run boom-boom ended error: the handler broke"):
        op.execute(_context(op))
    _assert_error(dh.list_runs("demo")[0], "the handler broke", dh_home)


# -- bad input --------------------------------------------------------------------------------------
def _assert_error(run: Run, words: str, dh_home: Path) -> None:
    assert run.state == "ERROR", run.status.message
    assert words in (run.status.message or ""), run.status.message
    assert dh.get_run(run.key).status.state == "ERROR"
    assert {d.name for d in dh.list_dataitems("demo")} <= {"employees"}
    assert dh.list_artifacts("demo") == [] and dh.list_models("demo") == []
    data = dh_home / "data" / "demo"
    leftovers = [p for p in data.rglob("*") if p.is_file()] if data.exists() else []
    assert leftovers == [], leftovers


def _bad(handler: str) -> Any:
    return dh.new_function(project="demo", name="bad", kind="mlrun", source={"code": BAD}, handler=handler)


def test_handler_that_does_not_exist(dh_home: Path) -> None:
    _assert_error(_bad("nothere").run(action="job"), "handler 'nothere' not found", dh_home)


def test_handler_that_raises_keeps_mlruns_message_and_traceback(dh_home: Path) -> None:
    run = _bad("boom").run(action="job")
    _assert_error(run, "the MLRun run bad-boom ended error: the handler broke", dh_home)
    assert 'raise ValueError("the handler broke")' in run.status.get("traceback")


def test_handler_that_logs_then_raises_leaves_nothing(dh_home: Path) -> None:
    _assert_error(_bad("logs_then_fails").run(action="job"), "ended error: after logging", dh_home)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"outputs": {"nope": "x"}}, "output 'nope' was not produced by the MLRun run; its artifacts: dataset, report"),
        ({"outputs": ["dataset", "rows"]}, "output 'rows' was not produced by the MLRun run ('rows' is a result: name"),
        ({"values": ["rows", "nope"]}, "value 'nope' is not a result of the MLRun run; its results: rows"),
        ({"values": ["report"]}, "value 'report' is not a result of the MLRun run ('report' is an artifact: it is"),
        ({"outputs": {"report": "dataset"}}, "two MLRun artifacts would become the output 'dataset'"),
    ],
)
def test_outputs_and_values_mlrun_did_not_produce(kwargs: dict[str, Any], words: str, dh_home: Path) -> None:
    _assert_error(_bad("two_outputs").run(action="job", **kwargs), words, dh_home)


def test_an_output_name_digitalhub_would_reject_is_refused_before_the_run(dh_home: Path) -> None:
    with pytest.raises(EntityError, match=r"^invalid name for output 'report' 'not a name!'"):
        _bad("two_outputs").run(action="job", outputs={"report": "not a name!"})
    assert dh.list_runs("demo") == []


def test_a_failure_after_uploading_deletes_what_was_uploaded(dh_home: Path) -> None:
    # the dataset is uploaded, then the report's file is missing: the dataset's file is deleted again
    run = _bad("removes_a_file").run(action="job")
    _assert_error(run, "MLRun artifact 'report': no file at", dh_home)
    assert "MLRun artifact 'dataset' -> dataitem 'dataset' at " in run.logs()


@pytest.mark.parametrize(
    "source, words",
    [
        ({"source": "zip+file:///nonexistent/code.zip"}, "cannot fetch the source 'zip+file:///nonexistent/code.zip'"),
        ({"source": "git+file:///nonexistent/repo.git#main"}, "cannot clone 'file:///nonexistent/repo.git'"),
        (
            {"source": "/nonexistent/pipeline.py"},
            "source['source'] '/nonexistent/pipeline.py' of function 'nosrc': no such file",
        ),
    ],
)
def test_source_that_cannot_be_fetched(source: dict[str, str], words: str, dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="nosrc", kind="mlrun", source=source, handler="h")
    _assert_error(fn.run(action="job"), words, dh_home)


def test_mlrun_environment_that_cannot_be_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dh_home: Path) -> None:
    from digitalhub_provider.runtimes import registry
    from digitalhub_provider.sdk.context import reset_context

    monkeypatch.setattr(registry, "MLRUN_REQUIREMENTS", ["mlrun==0.0.0"])
    monkeypatch.setenv("DIGITALHUB_ENVS_DIR", str(tmp_path / "envs"))
    reset_context()
    run = _bad("boom").run(action="job")
    _assert_error(run, "cannot install the requirements ['mlrun==0.0.0']", dh_home)
    assert run.status.get("pid") is None  # no runner was started
