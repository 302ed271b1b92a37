"""The kfp runtime: the DSL, kfp.local end to end, bad input, the operator and the TaskGroup
under dag.test(), and the kfp.Client path against a stand-in of the KFP runs API.

kfp lives only in its own environment (built here through the control plane and cached
in DIGITALHUB_TEST_ENVS_DIR): every check that needs kfp runs in a subprocess of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import digitalhub_provider as dh
from tests.airflow_helpers import DAGS, load_dag, task_states, xcoms
from tests.kfp_standin import KfpStandIn

PARKINGS = DAGS / "src" / "parkings.py"
CSV = DAGS / "data" / "parkings.csv"
PROJECT = "parkings"
# kfp==2.17.3 (registry.KFP_REQUIREMENTS) requires certifi>=2026.10.19, which is not published:
# the environment cannot be installed. 2.17.0 is the newest kfp that installs; drop this pin
# (and use the registry's) once registry.py names an installable version.
KFP_PIN = ["kfp==2.17.0"]


@pytest.fixture(autouse=True)
def kfp_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.runtimes import registry

    if registry.KFP_REQUIREMENTS == ["kfp==2.17.3"]:
        monkeypatch.setattr(registry, "KFP_REQUIREMENTS", KFP_PIN)


@pytest.fixture(scope="session")
def kfp_python() -> str:
    """The kfp environment's interpreter, built (once, cached) the way the control plane builds it."""
    from digitalhub_provider.launchers.envs import ensure_environment
    from digitalhub_provider.runtimes import registry

    envs_dir = os.environ.get("DIGITALHUB_TEST_ENVS_DIR", "/tmp/dh-test-envs")
    requirements = KFP_PIN if registry.KFP_REQUIREMENTS == ["kfp==2.17.3"] else registry.KFP_REQUIREMENTS
    saved = registry.KFP_REQUIREMENTS
    registry.KFP_REQUIREMENTS = requirements
    try:
        version, reqs = registry.environment_of("kfp", {})
    finally:
        registry.KFP_REQUIREMENTS = saved
    return ensure_environment(envs_dir, version, reqs)


@pytest.fixture
def kfp_standin() -> Iterator[KfpStandIn]:
    server = KfpStandIn().start()
    try:
        yield server
    finally:
        server.stop()


def in_kfp_env(python: str, code: str) -> str:
    res = subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def setup_parkings(extract_code: str | None = None) -> Any:
    """The seed's functions and the source dataitem; returns the source."""
    project = dh.get_or_create_project(PROJECT)
    dh.new_function(project=PROJECT, name="downloader-funct", kind="python", code_src=str(PARKINGS),
                    handler="downloader", python_version=f"PYTHON3_{sys.version_info.minor}")  # fmt: skip
    spec = {"code": extract_code} if extract_code else {"code_src": str(PARKINGS)}
    dh.new_function(project=PROJECT, name="extract-parkings", kind="python", handler="extract_parkings",
                    python_version=f"PYTHON3_{sys.version_info.minor}", **spec)  # fmt: skip
    return project.new_dataitem(name="parkings-source", kind="table", path=str(CSV))


def relationships(entity: Any) -> list[dict[str, str]]:
    return [r.to_dict() for r in entity.metadata.relationships or []]


# -- the DSL, without kfp ---------------------------------------------------------------------------
def test_the_dsl_records_the_seed_pipeline_without_kfp() -> None:
    code = f"""
        import json, sys, importlib.util
        spec = importlib.util.spec_from_file_location("parkings", {str(PARKINGS)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        from digitalhub_provider.runtimes.kfp.dsl import record_pipeline
        graph = record_pipeline(mod.pipeline)
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"kfp", "pandas", "sqlalchemy", "airflow"}})
        print(json.dumps({{"graph": graph.to_dict(), "heavy": heavy}}))
    """
    out = json.loads(subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                                    check=True).stdout)  # fmt: skip
    assert out["heavy"] == []
    from digitalhub_provider.runtimes.kfp.dsl import PipelineGraph

    graph = PipelineGraph.from_dict(out["graph"])
    assert [a.name for a in graph.arguments] == ["url"]
    download, extract = graph.order()
    assert (download.name, download.function, download.action) == ("download", "downloader-funct", "job")
    assert download.to_dict()["inputs"] == {"url": {"arg": "url"}}
    assert extract.to_dict()["inputs"] == {"di": {"step": "download", "output": "dataset", "kind": "output"}}
    assert extract.upstream() == ["download"]
    assert extract.exposed() == {"parkings": "output", "parkings_count": "value", "total_spaces": "value",
                                 "busiest": "value"}  # fmt: skip
    assert PipelineGraph.from_dict(graph.to_dict()).to_dict() == graph.to_dict()


def _steps(body: str, name: str = "pipe") -> Any:
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(body), namespace)
    return namespace[name]


@pytest.mark.parametrize(
    "body, words",
    [
        (
            """
            def pipe(url):
                with pipeline_context() as pc:
                    a = pc.step(name="a", function="f", inputs={"url": url}, outputs={"dataset": "dataset"})
                    pc.step(name="b", function="g", inputs={"di": a.outputs["datset"]})
            """,
            "step 'a' has no output 'datset': declare it in the step's outputs= or values= (its outputs: dataset)",
        ),
        (
            """
            def pipe():
                with pipeline_context() as pc:
                    a = pc.step(name="a", function="f", values=["count"])
                    pc.step(name="b", function="g", inputs={"n": a.outputs["count"]})
            """,
            "step 'b', input 'n': output 'count' of step 'a' is a value, not an entity; pass it in parameters",
        ),
        (
            """
            def pipe():
                with pipeline_context() as pc:
                    a = pc.step(name="a", function="f")
                    b = pc.step(name="b", function="g").after(a)
                    c = pc.step(name="c", function="h").after(b)
                    a.after(c)
            """,
            "the steps depend on each other in a cycle: a -> c -> b -> a",
        ),
        (
            """
            def pipe():
                with pipeline_context() as pc:
                    pc.step(name="a", function="f")
                    pc.step(name="a", function="g")
            """,
            "two steps are named 'a'",
        ),
        (
            """
            def pipe(url):
                with pipeline_context() as pc:
                    pc.step(name="a", function="f", parameters={"u": f"{url}/x"})
            """,
            "pipeline argument 'url' can only be passed whole as a step input or parameter",
        ),
        (
            """
            def pipe(url):
                with pipeline_context() as pc:
                    pc.step(name="a", function="f", parameters={"u": [url]})
            """,
            "step 'a', parameters 'u': pipeline argument 'url' is inside a list or dictionary",
        ),
        (
            """
            def pipe():
                raise ValueError("no pipeline today")
            """,
            "pipeline handler 'pipe' raised ValueError: no pipeline today",
        ),
        ("def pipe():\n    pass\n", "pipeline 'pipe' defines no step"),
        (
            """
            def pipe():
                with pipeline_context() as pc:
                    pc.step(name="a", function="f", cpu="1")
            """,
            "step 'a': unknown argument(s) 'cpu'",
        ),
    ],
)
def test_the_dsl_rejects_bad_pipelines_with_a_clear_message(body: str, words: str) -> None:
    from digitalhub_provider.runtimes.kfp.dsl import PipelineError, record_pipeline

    pipe = _steps("from digitalhub_provider.runtimes.kfp.dsl import pipeline_context\n" + textwrap.dedent(body))
    with pytest.raises(PipelineError) as err:
        record_pipeline(pipe)
    assert words in str(err.value)


# -- kfp.local end to end (SDK) -------------------------------------------------------------------------
def test_the_seed_workflow_runs_with_kfp_local(kfp_python: str) -> None:
    source = setup_parkings()
    workflow = dh.new_workflow(project=PROJECT, name="parkings-pipeline", kind="kfp", code_src=str(PARKINGS),
                               handler="pipeline")  # fmt: skip
    lines: list[str] = []
    run = workflow.run(action="pipeline", inputs={"url": source.key}, on_log=lines.append)
    assert run.state == "COMPLETED", (run.status.message, "\n".join(lines[-40:]))
    assert run.kind == "kfp+pipeline:run"

    # every step's outputs and results, under names that include the step
    outputs = run.outputs(as_key=True)
    assert set(outputs) == {"download.dataset", "extract_parkings.parkings"}
    assert run.result("extract_parkings.parkings_count") == 10
    assert run.result("extract_parkings.total_spaces") == 4920
    assert run.result("extract_parkings.busiest") == "Carracci"
    parkings = run.output("extract_parkings.parkings").as_df()
    assert len(parkings) == 10 and parkings.iloc[0]["parking"] == "Carracci"

    # the step runs: step_of the workflow run, lineage chained through the dataset
    steps = run.result("steps")
    download_run = dh.get_run(steps["download"]["run_key"])
    extract_run = dh.get_run(steps["extract_parkings"]["run_key"])
    for step_run in (download_run, extract_run):
        assert step_run.state == "COMPLETED"
        assert {"type": "step_of", "dest": run.key} in relationships(step_run)
    assert {"type": "consumes", "dest": source.key} in relationships(download_run)
    dataset = dh.get_dataitem(outputs["download.dataset"])
    assert {"type": "produced_by", "dest": download_run.key} in relationships(dataset)
    assert {"type": "consumes", "dest": dataset.key} in relationships(extract_run)
    assert {"type": "produced_by", "dest": extract_run.key} in relationships(
        dh.get_dataitem(outputs["extract_parkings.parkings"])
    )
    assert "kfp.step=extract_parkings" in (extract_run.metadata.labels or [])
    assert sorted(r.kind for r in dh.list_runs(PROJECT)) == ["kfp+pipeline:run", "python+job:run", "python+job:run"]

    # the compiled KFP IR is kept with the run and loads back with kfp; it installs nothing per task
    assert Path(run.ctx.run_url(run.id, "kfp-root")).is_dir()  # the run's own pipeline root
    package = Path(run.result("pipeline_package"))
    assert package == Path(run.ctx.run_url(run.id, "pipeline.yaml")) and package.is_file()
    text = package.read_text()
    assert "pip install" not in text and "dh_step" in text
    loaded = json.loads(
        in_kfp_env(
            kfp_python,
            f"""
            import json
            from kfp import components
            comp = components.load_component_from_file({str(package)!r})
            spec = comp.pipeline_spec
            print(json.dumps({{"name": comp.name, "inputs": sorted(comp.component_spec.inputs),
                              "tasks": sorted(spec.root.dag.tasks),
                              "deps": list(spec.root.dag.tasks["dh-extract-parkings"].dependent_tasks)}}))
            """,
        )
    )
    assert loaded == {"name": "parkings-pipeline", "inputs": ["url"], "tasks": ["dh-download", "dh-extract-parkings"],
                      "deps": ["dh-download"]}  # fmt: skip
    logs = run.logs()
    assert "workflow 'parkings-pipeline': steps download, extract_parkings" in logs
    assert "downloaded 30 observations of 10 parkings" in logs


FAILING_EXTRACT = """
from digitalhub_provider import handler

@handler(outputs=["parkings"])
def extract_parkings(di):
    raise KeyError("no column 'capacity' in the dataset")
"""

THREE_STEPS = """
from digitalhub_provider.runtimes.kfp.dsl import pipeline_context

def pipeline(url):
    with pipeline_context() as pc:
        d = pc.step(name="download", function="downloader-funct", inputs={"url": url}, outputs={"dataset": "dataset"})
        e = pc.step(name="extract_parkings", function="extract-parkings", inputs={"di": d.outputs["dataset"]},
                    outputs={"parkings": "parkings"})
        pc.step(name="report", function="report", inputs={"di": e.outputs["parkings"]})
"""


def test_a_failing_step_fails_the_workflow_naming_it_and_stops_later_steps(kfp_python: str) -> None:
    source = setup_parkings(extract_code=FAILING_EXTRACT)
    dh.new_function(project=PROJECT, name="report", kind="python", code="def report(di):\n    return 1\n",
                    handler="report", python_version=f"PYTHON3_{sys.version_info.minor}")  # fmt: skip
    workflow = dh.new_workflow(project=PROJECT, name="three-steps", kind="kfp", code=THREE_STEPS, handler="pipeline")
    run = workflow.run(inputs={"url": source.key}, on_log=lambda line: None)
    assert run.state == "ERROR"
    message = run.status.message
    assert message.startswith("step 'extract_parkings' failed (run store://parkings/run/python+job:run/")
    assert "ended ERROR): handler 'extract_parkings' raised KeyError" in message and "capacity" in message
    by_function = {r.spec["function"].split("/")[-1].split(":")[0]: r for r in dh.list_runs(PROJECT)}
    assert set(by_function) == {"three-steps", "downloader-funct", "extract-parkings"}  # report never ran
    assert by_function["downloader-funct"].state == "COMPLETED"
    assert by_function["extract-parkings"].state == "ERROR"
    # the earlier step's output stays registered, with its lineage
    dataset = dh.get_dataitem("dataset", project=PROJECT)
    assert {"type": "produced_by", "dest": by_function["downloader-funct"].key} in relationships(dataset)
    assert dh.list_dataitems(PROJECT, name="parkings") == []


CACHED_STEPS = """
from digitalhub_provider.runtimes.kfp.dsl import pipeline_context

def pipeline(url):
    with pipeline_context() as pc:
        d = pc.step(name="download", function="downloader-funct", inputs={"url": url}, outputs=["dataset"],
                    cache=True)
        pc.step(name="extract", function="extract-parkings", inputs={"di": d.output}, outputs=["parkings"],
                cache={"max_age": 3600})
"""


def test_cached_steps_reuse_the_earlier_workflow_runs_steps(kfp_python: str) -> None:
    """KFP steps with ``cache``: the second workflow run's steps reuse the first one's (their runs say
    ``cached_from`` the earlier step runs), so the dataitems get no new version; the workflow's own
    results are the same."""
    source = setup_parkings()
    workflow = dh.new_workflow(project=PROJECT, name="cached", kind="kfp", code=CACHED_STEPS, handler="pipeline")
    first = workflow.run(inputs={"url": source.key}, on_log=lambda line: None)
    assert first.state == "COMPLETED", first.status.message
    second = workflow.run(inputs={"url": source.key}, on_log=lambda line: None)
    assert second.state == "COMPLETED", second.status.message
    for step in ("download", "extract"):
        earlier = dh.get_run(first.results()["steps"][step]["run_key"])
        reused = dh.get_run(second.results()["steps"][step]["run_key"])
        assert earlier.status.get("cache", {}).get("hit") is False, earlier.status.get("cache")
        assert reused.status.get("cache", {}).get("hit") is True, reused.status.get("cache")
        assert {"type": "cached_from", "dest": earlier.key} in relationships(reused)
        assert reused.status.get("outputs") == earlier.status.get("outputs")
    assert second.outputs(as_key=True) == first.outputs(as_key=True)
    assert len(dh.list_dataitems(PROJECT, name="parkings", all_versions=True)) == 1


def test_a_step_cache_that_is_not_a_policy_is_refused_when_recorded() -> None:
    from digitalhub_provider.runtimes.kfp.dsl import PipelineError, pipeline_context

    with pipeline_context() as pc, pytest.raises(PipelineError, match="step 'd': cache must be True, False or"):
        pc.step(name="d", function="f", cache="yes")


FLOW = """
from digitalhub_provider.runtimes.kfp.dsl import pipeline_context

def pipeline(url, factor: int = 2, tags=None):
    with pipeline_context() as pc:
        d = pc.step(name="download", function="downloader-funct", inputs={"url": url}, outputs=["dataset"])
        e = pc.step(name="extract", function="extract-parkings", inputs={"di": d.output},
                    outputs={"parkings": "parkings"}, values=["parkings_count", "busiest"])
        s = pc.step(name="scale", function="scale", values=["scaled", "summary"],
                    parameters={"n": e.outputs["parkings_count"], "factor": factor, "tags": tags,
                                "busiest": e.outputs["busiest"], "label": "fixed"})
        pc.step(name="scale.again", function="scale", function_id="PINNED", values=["scaled"],
                parameters={"n": s.outputs["scaled"], "factor": 1, "tags": None, "busiest": "-", "label": "pinned"},
                ).after(e)
"""
SCALE = """
from digitalhub_provider import handler

@handler(outputs=["scaled", "summary"])
def scale(n: int, factor: int, tags, busiest: str, label: str):
    return n OP factor, {"tags": tags, "busiest": busiest, "label": label}
"""


def test_compiling_plans_one_component_per_step_without_kfp() -> None:
    from digitalhub_provider.runtimes.kfp.compile import argument_specs, component_source, plan_components
    from digitalhub_provider.runtimes.kfp.dsl import record_pipeline

    graph = record_pipeline(_steps(FLOW, "pipeline"))
    args = argument_specs(graph, graph.bind({"url": "store://p/dataitem/table/src"}, {"tags": ["a"]}))
    assert [(a.type_name, a.value, a.json_encoded) for a in args.values()] == [
        ("str", "store://p/dataitem/table/src", False), ("int", 2, False), ("str", '["a"]', True)]  # fmt: skip
    plans = plan_components(graph, args, {"run_id": "r1", "run_key": "store://p/run/kfp+pipeline:run/r1"})
    assert [p.function_name for p in plans] == ["dh_download", "dh_extract", "dh_scale", "dh_scale_again"]
    scale = plans[2]
    assert scale.parameter_types == {"par_n": "str", "par_factor": "int", "par_tags": "str", "par_busiest": "str"}
    assert scale.spec["parameters"] == {
        "n": {"param": "par_n", "decode": True}, "factor": {"param": "par_factor", "decode": False},
        "tags": {"param": "par_tags", "decode": True}, "busiest": {"param": "par_busiest", "decode": True},
        "label": {"value": "fixed"},
    }  # fmt: skip
    assert scale.exposed == [("scaled", "scaled", "value"), ("summary", "summary", "value")]
    source = component_source(plans)
    compile(source, "components.py", "exec")
    assert "def dh_scale(dh_step: str, par_n: str, par_factor: int, par_tags: str, par_busiest: str)" in source


def test_values_and_parameters_flow_between_steps_and_a_pinned_version_runs(kfp_python: str) -> None:
    source = setup_parkings()
    py = f"PYTHON3_{sys.version_info.minor}"
    pinned = dh.new_function(project=PROJECT, name="scale", kind="python", code=SCALE.replace("OP", "*"),
                             handler="scale", python_version=py)  # fmt: skip
    latest = dh.new_function(project=PROJECT, name="scale", kind="python", code=SCALE.replace("OP", "+"),
                             handler="scale", python_version=py)  # fmt: skip
    workflow = dh.new_workflow(project=PROJECT, name="flow", kind="kfp", code=FLOW.replace("PINNED", pinned.id),
                               handler="pipeline")  # fmt: skip
    run = workflow.run(inputs={"url": source.key}, parameters={"factor": 3, "tags": ["a", "b"]},
                       on_log=lambda line: None)  # fmt: skip
    assert run.state == "COMPLETED", run.status.message
    results = run.results()
    assert results["extract.parkings_count"] == 10
    assert results["scale.scaled"] == 13  # the latest version adds
    assert results["scale.summary"] == {"tags": ["a", "b"], "busiest": "Carracci", "label": "fixed"}
    assert results["scale.again.scaled"] == 13  # the pinned version multiplies (13 * 1)
    again = dh.get_run(results["steps"]["scale.again"]["run_key"])
    scale = dh.get_run(results["steps"]["scale"]["run_key"])
    assert again.spec["function"] == pinned.key and scale.spec["function"] == latest.key
    assert again.spec["parameters"] == {"n": 13, "factor": 1, "tags": None, "busiest": "-", "label": "pinned"}
    assert set(run.outputs(as_key=True)) == {"download.dataset", "extract.parkings"}


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing_function", "step 'extract_parkings': function 'extract-parkings' does not exist in project"),
        ("pinned_version", "step 'download': function 'downloader-funct' version nope does not exist"),
        ("bad_action", "step 'download': action 'serve' cannot be a pipeline step"),
        ("unknown_output", "step 'download' has no output 'datset'"),
        ("raises", "pipeline handler 'pipeline' raised ZeroDivisionError: division by zero"),
        ("missing_argument", "pipeline argument 'url' is missing"),
        ("unknown_argument", "'colour' is not an argument of pipeline 'bad-pipeline' (its arguments: url)"),
        ("syntax", "syntax error in main.py line 2"),
    ],
)
def test_bad_workflows_end_error_before_any_step_and_register_nothing(case: str, words: str) -> None:
    source = setup_parkings()
    step2 = 'pc.step(name="extract_parkings", function="extract-parkings", inputs={"di": d.outputs["dataset"]})'
    download = 'd = pc.step(name="download", function="downloader-funct", inputs={"url": url}, outputs=["dataset"]'
    body = {
        "pinned_version": f'{download}, function_id="nope")',
        "bad_action": f'{download}, action="serve")',
        "unknown_output": f"{download})\n        d.outputs['datset']",
        "raises": f"{download})\n        1 / 0",
    }.get(case, f"{download})\n        {step2}")
    code = (
        "from digitalhub_provider.runtimes.kfp.dsl import pipeline_context\n\n"
        f"def pipeline(url):\n    with pipeline_context() as pc:\n        {body}\n"
    )
    if case == "syntax":
        code = "def pipeline(url):\n    with pipeline_context() as pc\n"
    if case == "missing_function":
        dh.delete_function(project=PROJECT, entity_name="extract-parkings", delete_all_versions=True)
    workflow = dh.new_workflow(project=PROJECT, name="bad-pipeline", kind="kfp", code=code, handler="pipeline")
    kwargs: dict[str, Any] = {"inputs": {"url": source.key}}
    if case == "missing_argument":
        kwargs = {}
    if case == "unknown_argument":
        kwargs["parameters"] = {"colour": "red"}
    run = workflow.run(on_log=lambda line: None, **kwargs)
    assert run.state == "ERROR"
    assert words in run.status.message
    assert [r.key for r in dh.list_runs(PROJECT)] == [run.key]  # no step run
    assert [d.name for d in dh.list_dataitems(PROJECT)] == ["parkings-source"]


# -- plain kfp pipelines and precompiled packages (operator) -------------------------------------------
PLAIN_KFP = """
from kfp import dsl


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="adder")
def add_pipeline(x: int = 1, y: int = 2) -> int:
    first = add(a=x, b=y)
    return add(a=first.output, b=first.output).output
"""


def _context(task: Any, try_number: int = 1) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="kfp_manual", run_id="manual_run", task_id=task.task_id, map_index=-1, try_number=try_number,
        xcom_push=lambda key, value: pushed.__setitem__(key, value), pushed=pushed,
    )  # fmt: skip
    return {"ti": ti, "dag": None}


@pytest.mark.usefixtures("airflow_db")
def test_operator_runs_a_plain_kfp_pipeline_and_a_precompiled_package(kfp_python: str, tmp_path: Path) -> None:
    from digitalhub_provider.operators import KfpPipelineOperator

    (tmp_path / "team_pipelines.py").write_text(PLAIN_KFP)
    op = KfpPipelineOperator(task_id="adder", project="demo", workflow="adder",
                             code_src=str(tmp_path / "team_pipelines.py"), kfp_pipeline="team_pipelines:add_pipeline",
                             parameters={"x": 3, "y": 4})  # fmt: skip
    ctx = _context(op)
    summary = op.execute(ctx)
    assert summary["state"] == "COMPLETED"
    assert summary["results"]["pipeline.Output"] == 14 and ctx["ti"].pushed["pipeline.Output"] == 14
    package = Path(summary["results"]["pipeline_package"])
    assert "adder" in package.read_text()

    copy = tmp_path / "adder.yaml"
    copy.write_bytes(package.read_bytes())
    op2 = KfpPipelineOperator(task_id="adder_ir", project="demo", workflow="adder-ir",
                              pipeline_package_path=str(copy), parameters={"x": 10})  # fmt: skip
    summary2 = op2.execute(_context(op2))
    assert summary2["state"] == "COMPLETED" and summary2["results"]["pipeline.Output"] == 24
    workflow = dh.get_workflow("adder-ir", project="demo")
    assert workflow.spec["lang"] == "yaml" and workflow.kind == "kfp"


SLOW_PIPELINE = """
from digitalhub_provider.runtimes.kfp.dsl import pipeline_context

def pipeline():
    with pipeline_context() as pc:
        first = pc.step(name="slow", function="slow")
        pc.step(name="never", function="slow").after(first)
"""


@pytest.mark.usefixtures("airflow_db")
def test_killing_the_task_stops_the_workflow_run_and_its_running_step(kfp_python: str) -> None:
    from digitalhub_provider.operators import KfpPipelineOperator

    dh.new_function(project="demo", name="slow", kind="python", handler="slow",
                    code="import time\n\ndef slow():\n    print('sleeping', flush=True)\n    time.sleep(120)\n",
                    python_version=f"PYTHON3_{sys.version_info.minor}")  # fmt: skip
    op = KfpPipelineOperator(task_id="slow_pipeline", project="demo", workflow="slow", code=SLOW_PIPELINE,
                             handler="pipeline")  # fmt: skip
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _execute(op, errors))
    thread.start()
    deadline = time.monotonic() + 180
    step_runs: list[Any] = []
    while time.monotonic() < deadline and not step_runs:
        step_runs = [r for r in dh.list_runs("demo") if r.kind == "python+job:run" and r.state == "RUNNING"]
        time.sleep(0.2)
    assert step_runs, errors
    time.sleep(1)  # let the step's handler start
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert errors and "ended STOPPED" in str(errors[0])
    step = dh.get_run(step_runs[0].key)
    assert step.state == "STOPPED"
    assert dh.get_run(op._run.key).state == "STOPPED"
    assert _gone(int(step.status.get("pid")))  # killed, not left running under a dead workflow
    assert len([r for r in dh.list_runs("demo") if r.kind == "python+job:run"]) == 1  # "never" did not start


def _gone(pid: int, wait: float = 20.0) -> bool:
    """The process has exited (a zombie that nobody reaped yet counts: it runs nothing)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.2)
    return False


def _execute(op: Any, errors: list[BaseException]) -> None:
    try:
        op.execute(_context(op))
    except BaseException as exc:
        errors.append(exc)


# -- the example DAG: operator and TaskGroup under dag.test() -------------------------------------------
def test_the_example_dag_parses_light_and_renders_the_pipeline_as_a_task_group() -> None:
    code = (
        "import sys, json\n"
        "from airflow.sdk import DAG\n"
        "before = set(sys.modules)\n"
        "from tests.airflow_helpers import load_dag\n"
        "dag = load_dag('kfp_parkings.py')\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps({'heavy': sorted(new & {'kfp', 'pandas', 'pyarrow', 'boto3', 'sqlalchemy'}),\n"
        "                  'tasks': sorted(dag.task_dict),\n"
        "                  'up': sorted(dag.get_task('parkings_native.extract_parkings').upstream_task_ids),\n"
        "                  'download_up': sorted(dag.get_task('parkings_native.download').upstream_task_ids)}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=DAGS.parent, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["tasks"] == ["kfp_pipeline", "parkings_native.download", "parkings_native.extract_parkings",
                            "register_source", "save_downloader", "save_extract"]  # fmt: skip
    assert out["up"] == ["parkings_native.download"]
    assert out["download_up"] == ["register_source", "save_downloader", "save_extract"]


@pytest.mark.usefixtures("airflow_db")
def test_the_example_dag_runs_the_pipeline_both_ways(kfp_python: str) -> None:
    dag = load_dag("kfp_parkings.py")
    dr = dag.test()
    assert str(dr.state) == "success", task_states(dr)
    x = xcoms("kfp_parkings", dr.run_id)

    # one task: the workflow run, every step's outputs and results under keys naming the step
    summary = x[("kfp_pipeline", "return_value")]
    assert summary["state"] == "COMPLETED" and summary["run_key"].startswith("store://parkings/run/kfp+pipeline:run/")
    assert set(summary["outputs"]) == {"download.dataset", "extract_parkings.parkings"}
    assert x[("kfp_pipeline", "extract_parkings.parkings_count")] == 10
    assert x[("kfp_pipeline", "extract_parkings.busiest")] == "Carracci"
    assert x[("kfp_pipeline", "download.dataset")] == summary["outputs"]["download.dataset"]
    workflow_run = dh.get_run(summary["run_key"])
    assert "airflow.task_id=kfp_pipeline" in (workflow_run.metadata.labels or [])
    for step in ("download", "extract_parkings"):
        step_run = dh.get_run(summary["results"]["steps"][step]["run_key"])
        assert {"type": "step_of", "dest": workflow_run.key} in relationships(step_run)

    # the TaskGroup: one Airflow task (and one run) per step, outputs flowing through XCom
    native_extract = x[("parkings_native.extract_parkings", "return_value")]
    assert native_extract["results"]["parkings_count"] == 10
    assert x[("parkings_native.extract_parkings", "busiest")] == "Carracci"
    native_download = x[("parkings_native.download", "dataset")]
    extract_run = dh.get_run(native_extract["run_key"])
    assert {"type": "consumes", "dest": native_download} in relationships(extract_run)
    assert "kfp.step=extract_parkings" in (extract_run.metadata.labels or [])
    assert x[("register_source", "parkings-source")] == dh.get_dataitem("parkings-source", project=PROJECT).key


# -- the KFP API server path (kfp.Client against the stand-in) -------------------------------------------
@pytest.fixture
def kfp_connection(kfp_standin: KfpStandIn, monkeypatch: pytest.MonkeyPatch) -> KfpStandIn:
    conn = {"conn_type": "digitalhub", "extra": {"kfp_host": kfp_standin.url}}
    monkeypatch.setenv("AIRFLOW_CONN_DIGITALHUB_DEFAULT", json.dumps(conn))
    return kfp_standin


def _pipeline_operator(task_id: str = "pipeline") -> Any:
    from digitalhub_provider.operators import KfpPipelineOperator

    source = setup_parkings()
    op = KfpPipelineOperator(task_id=task_id, project=PROJECT, workflow="parkings-pipeline", code_src=str(PARKINGS),
                             handler="pipeline", inputs={"url": source.key}, kfp_poll_interval=0.2)  # fmt: skip
    return op, source


@pytest.mark.usefixtures("airflow_db")
def test_kfp_server_create_poll_complete(kfp_connection: KfpStandIn) -> None:
    op, source = _pipeline_operator()
    ctx = _context(op)
    summary = op.execute(ctx)
    assert summary["state"] == "COMPLETED"
    [created] = kfp_connection.created
    assert created["runtime_config"]["parameters"] == {"url": source.key}
    assert sorted(created["pipeline_spec"]["root"]["dag"]["tasks"]) == ["dh-download", "dh-extract-parkings"]
    assert created["display_name"].startswith("parkings-pipeline-")
    run = dh.get_run(summary["run_key"])
    assert run.status.get("kfp_run_id") == created["run_id"] == summary["results"]["kfp_run_id"]
    assert run.status.get("kfp_host") == kfp_connection.url
    assert summary["results"]["kfp_state"] == "SUCCEEDED"
    # the steps' pods get the store locations, never a credential
    env = json.dumps(created["pipeline_spec"]["deploymentSpec"])
    assert "DIGITALHUB_DATA_URL" in env and "SECRET" not in env


@pytest.mark.usefixtures("airflow_db")
def test_kfp_server_failed_and_canceled_runs(kfp_connection: KfpStandIn) -> None:
    from airflow.sdk.exceptions import AirflowException

    op, _ = _pipeline_operator("failing")
    kfp_connection.plan_next("PENDING", "RUNNING", ("FAILED", "pod dh-extract-parkings OOMKilled"))
    with pytest.raises(
        AirflowException, match=r"ended ERROR: the KFP run \w+ ended FAILED: pod dh-extract-parkings OOMKilled"
    ):
        op.execute(_context(op))
    op2, _ = _pipeline_operator("canceled")
    kfp_connection.plan_next("RUNNING", "CANCELING", "CANCELED")
    with pytest.raises(AirflowException, match=r"ended STOPPED: the KFP run \w+ ended CANCELED"):
        op2.execute(_context(op2))
    states = {r.metadata.labels[-3]: r.state for r in dh.list_runs(PROJECT)}
    assert states == {"airflow.task_id=failing": "ERROR", "airflow.task_id=canceled": "STOPPED"}


@pytest.mark.usefixtures("airflow_db")
def test_killing_the_task_terminates_the_kfp_run(kfp_connection: KfpStandIn) -> None:
    op, _ = _pipeline_operator()
    kfp_connection.plan_next("PENDING", "RUNNING")  # runs until terminated
    errors: list[BaseException] = []

    def target() -> None:
        try:
            op.execute(_context(op))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 120
    while (op._run is None or not op._run.status.get("kfp_run_id")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert op._run is not None and op._run.status.get("kfp_run_id"), errors
    kfp_run_id = op._run.status.get("kfp_run_id")
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert kfp_run_id in kfp_connection.terminated
    assert kfp_connection.state_of(kfp_run_id) in ("CANCELING", "CANCELED")
    assert dh.get_run(op._run.key).state == "STOPPED"
    assert errors and "ended STOPPED" in str(errors[0])


@pytest.mark.usefixtures("airflow_db")
def test_a_retry_reattaches_to_the_kfp_run_of_the_earlier_try(kfp_connection: KfpStandIn) -> None:
    from digitalhub_provider.sdk.context import get_context
    from tests.runs import running_run

    op, source = _pipeline_operator()
    ctx = get_context()
    # try 1 created a KFP run, then its worker died: the workflow run is still RUNNING
    existing = kfp_connection.add_run("RUNNING", "RUNNING", "SUCCEEDED")
    op._dag_folder = None
    fn = op.resolve_function(ctx)
    stale = running_run(
        ctx,
        fn,
        action="pipeline",
        inputs={"url": source.key},
        labels=op.run_labels(_context(op, 1)),
        status={"kfp_run_id": existing, "kfp_host": kfp_connection.url},
    )
    # try 2 reattaches instead of submitting a second run
    summary = op.execute(_context(op, try_number=2))
    assert summary["state"] == "COMPLETED"
    assert kfp_connection.created == []
    assert summary["results"]["kfp_run_id"] == existing
    assert dh.get_run(summary["run_key"]).status.get("kfp_run_id") == existing
    assert dh.get_run(stale.key).state == "ERROR"
    # try 3 of a task whose KFP run failed submits a new one
    kfp_connection.runs[existing]["state"] = "FAILED"
    kfp_connection.plans[existing].clear()
    kfp_connection.plans[existing].append(("FAILED", None))
    summary3 = op.execute(_context(op, try_number=3))
    assert summary3["state"] == "COMPLETED" and len(kfp_connection.created) == 1
    assert summary3["results"]["kfp_run_id"] == kfp_connection.created[0]["run_id"] != existing


def test_the_sdk_runs_on_a_kfp_server_named_in_the_environment(
    kfp_standin: KfpStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITALHUB_KFP_HOST", kfp_standin.url)
    monkeypatch.setenv("DIGITALHUB_KFP_POLL_SECONDS", "0.2")
    source = setup_parkings()
    workflow = dh.new_workflow(project=PROJECT, name="parkings-pipeline", kind="kfp", code_src=str(PARKINGS),
                               handler="pipeline")  # fmt: skip
    run = workflow.run(inputs={"url": source.key}, on_log=lambda line: None)
    assert run.state == "COMPLETED", run.status.message
    assert run.result("kfp_run_id") == kfp_standin.created[0]["run_id"]
    assert kfp_standin.state_of(run.result("kfp_run_id")) == "SUCCEEDED"


def test_step_pods_get_store_locations_but_no_credential() -> None:
    """What the compiled steps are given (env of the step pods on a KFP cluster): never a key, a secret,
    a token or a password, even when the worker's settings hold them."""
    from digitalhub_provider.config import Settings
    from digitalhub_provider.runtimes.kfp.server import safe_env

    settings = Settings(
        metadata_url="postgresql+psycopg2://dh:pg-pass@db:5432/dh",
        data_url="s3://bucket/data",
        s3_endpoint_url="http://minio:9000",
        s3_access_key_id="AKIA-KEY",
        s3_secret_access_key="s3-secret",
        mlrun_api="http://mlrun-api:8080",
        mlrun_token="mlrun-token",
    )
    env = safe_env(settings)
    text = json.dumps(env)
    for secret in ("pg-pass", "AKIA-KEY", "s3-secret", "mlrun-token"):
        assert secret not in text
    assert env["DIGITALHUB_METADATA_URL"] == "postgresql+psycopg2://dh@db:5432/dh"
    assert env["DIGITALHUB_DATA_URL"] == "s3://bucket/data" and env["DIGITALHUB_MLRUN_API"] == "http://mlrun-api:8080"
