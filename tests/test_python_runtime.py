"""The python runtime's job action, executed for real in subprocesses."""

from __future__ import annotations

import base64
import pickle
import subprocess
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

import digitalhub_provider as dh
from digitalhub_provider.entities import Artifact, Dataitem, Run
from digitalhub_provider.sdk.context import get_context

PY = {"kind": "python", "python_version": "PYTHON3_11"}

SEED = """
import pandas as pd
from digitalhub_provider import handler


def func1():
    return "hello world"


@handler(outputs=["result"])
def func2():
    return "hello world"


def func3(project):
    with open("example.txt", "w") as fh:
        fh.write("an artifact")
    project.log_artifact(name="example", kind="artifact", source_path="example.txt")


def func5(di, param1: str):
    print("rows", len(di.as_df()), param1)


@handler(outputs=["data", "string"])
def func(di, param1: str):
    df = di.as_df()
    return df[df["pop"] > 100000], "some value " + param1
"""


@pytest.fixture
def seed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    src = tmp_path / "main.py"
    src.write_text(SEED)
    (tmp_path / "cities.csv").write_text("city,pop\nRome,2800000\nTrento,118000\nLevico,8000\n")
    monkeypatch.chdir(tmp_path)
    return src


def _no_outputs_left(project: str = "demo") -> None:
    assert dh.list_dataitems(project) == [] or all(not d.metadata.relationships for d in dh.list_dataitems(project))
    assert dh.list_artifacts(project) == []


# -- the seed's examples ----------------------------------------------------------------
def test_seed_plain_and_decorated_functions(seed_file: Path) -> None:
    f1 = dh.new_function(project="demo", name="func1", code_src="main.py", handler="func1", **PY)
    run = f1.run(action="job", local_execution=True)
    assert run.state == "COMPLETED" and run.results() == {"output": "hello world"}
    f2 = dh.new_function(project="demo", name="func2", code_src="main.py", handler="func2", **PY)
    run = f2.run(action="job", local_execution=True)
    assert run.result("result") == "hello world"
    assert run.kind == "python+job:run" and run.spec["task"].startswith("store://demo/task/python+job/")
    assert dh.get_run(run.key).status.state == "COMPLETED"


def test_seed_project_argument_logs_an_artifact_with_lineage(seed_file: Path) -> None:
    fn = dh.new_function(project="demo", name="func3", code_src="main.py", handler="func3", **PY)
    run = fn.run(action="job", local_execution=True)
    assert run.state == "COMPLETED", run.status.message
    art = dh.get_artifact("example", project="demo")
    assert Path(art.download()).read_text() == "an artifact"
    assert {"type": "produced_by", "dest": run.key} in [r.to_dict() for r in art.metadata.relationships or []]


def test_seed_dataitem_input_and_parameter(seed_file: Path) -> None:
    project = dh.get_or_create_project("demo")
    di = project.new_dataitem(name="cities", kind="table", path=str(seed_file.parent / "cities.csv"))
    fn = project.new_function(name="func5", code_src="main.py", handler="func5", **PY)
    lines: list[str] = []
    run = fn.run(
        action="job", inputs={"di": di.key}, parameters={"param1": "p"}, local_execution=True, on_log=lines.append
    )
    assert run.state == "COMPLETED", run.status.message
    assert "rows 3 p" in lines and "rows 3 p" in run.logs()
    assert {"type": "consumes", "dest": di.key} in [r.to_dict() for r in run.metadata.relationships or []]


def test_seed_dataframe_and_string_read_back(seed_file: Path) -> None:
    di = dh.new_dataitem(project="demo", name="cities", kind="table", path=str(seed_file.parent / "cities.csv"))
    fn = dh.new_function(project="demo", name="func", code_src="main.py", handler="func", **PY)
    run = fn.run(action="job", inputs={"di": di.key}, parameters={"param1": "x"}, local_execution=True)
    assert run.state == "COMPLETED", run.status.message
    data = run.output("data")
    assert isinstance(data, Dataitem) and data.kind == "table" and data.spec["path"].endswith(".parquet")
    assert list(data.as_df()["city"]) == ["Rome", "Trento"]
    assert run.result("string") == "some value x"
    assert run.output("data", as_key=True) == data.key
    assert run.output("data", as_dict=True)["key"] == data.key
    assert set(run.outputs(as_key=True)) == {"data"} and run.results() == {"string": "some value x"}
    assert {"type": "produced_by", "dest": run.key} in [r.to_dict() for r in data.metadata.relationships or []]
    timings = run.status.get("timings")
    for state in ("created", "built", "ready", "running", "completed"):
        assert state in timings
    assert [t["status"] for t in run.status.get("transitions")] == ["CREATED", "BUILT", "READY", "RUNNING", "COMPLETED"]


# -- code sources -------------------------------------------------------------------------


def _git_repo(root: Path) -> None:
    """A repository served over plain HTTP (git's dumb protocol), with a tag and a branch."""
    work = root.parent / "work"
    work.mkdir()

    def git(*args: str, cwd: Path = work) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (work / "pkg").mkdir()
    (work / "pkg" / "__init__.py").write_text("")
    (work / "pkg" / "job.py").write_text("def run():\n    return 'v1'\n")
    git("add", ".")
    git("commit", "-qm", "v1")
    git("tag", "v1")
    (work / "pkg" / "job.py").write_text("def run():\n    return 'v2'\n")
    git("commit", "-qam", "v2")
    git("clone", "-q", "--bare", str(work), str(root / "repo.git"), cwd=root)
    git("update-server-info", cwd=root / "repo.git")


def test_code_sources(tmp_path: Path, http_root: tuple[str, Path], s3_env: str) -> None:
    base, root = http_root
    code = "def h(x=1):\n    return x * 2\n"
    cases = {
        "inline": {"code": code, "handler": "h"},
        "b64": {"base64": base64.b64encode(code.encode()).decode(), "handler": "h"},
    }
    (root / "single.py").write_text(code)
    cases["http"] = {"code_src": f"{base}/single.py", "handler": "h"}
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("mod/__init__.py", "")
        zf.writestr("mod/work.py", code)
    cases["zipfile"] = {"code_src": f"zip+file://{archive}", "handler": "mod.work:h"}
    import boto3

    from digitalhub_provider.sdk.context import get_context

    bucket = s3_env[5:].split("/")[0]
    s3 = get_context().data_store(s3_env)
    s3.upload(archive, f"s3://{bucket}/code/src.zip")
    del boto3
    cases["zips3"] = {"code_src": f"zip+s3://{bucket}/code/src.zip", "handler": "mod.work:h"}
    _git_repo(root)
    cases["git-tag"] = {"code_src": f"git+{base}/repo.git#v1", "handler": "pkg.job:run"}
    cases["git-branch"] = {"code_src": f"git+{base}/repo.git#main", "handler": "pkg.job:run"}
    expected = {"inline": 2, "b64": 2, "http": 2, "zipfile": 2, "zips3": 2, "git-tag": "v1", "git-branch": "v2"}
    for name, spec in cases.items():
        run = dh.new_function(project="demo", name=name, **PY, **spec).run(action="job")
        assert run.state == "COMPLETED", (name, run.status.message)
        assert run.results() == {"output": expected[name]}, name


# -- output mapping -------------------------------------------------------------------------
def test_output_mapping(tmp_path: Path) -> None:
    code = """
import pandas as pd
from digitalhub_provider import handler

class Thing:
    def __init__(self, n):
        self.n = n

@handler(outputs=["frame", "numbers", "mapping", "flag", "thing", "aset"])
def many():
    return pd.DataFrame({"a": [1, 2]}), [1, 2.5], {"k": ["v"]}, True, Thing(3), {1, 2}

def undecorated():
    return 1, "two"

def relog(project):
    return project.log_dataitem(name="logged", kind="table", data=pd.DataFrame({"x": [1]}))
"""
    project = dh.get_or_create_project("demo")
    run = project.new_function(name="many", code=code, handler="many", **PY).run(action="job")
    assert run.state == "COMPLETED", run.status.message
    assert run.results() == {"numbers": [1, 2.5], "mapping": {"k": ["v"]}, "flag": True}
    assert list(run.output("frame").as_df()["a"]) == [1, 2]
    thing = run.output("thing")
    assert isinstance(thing, Artifact)
    payload = Path(thing.download()).read_bytes()
    assert b"Thing" in payload and payload.startswith(b"\x80")  # a pickle of the handler's own class
    assert pickle.loads(Path(run.output("aset").download()).read_bytes()) == {1, 2}

    run = project.new_function(name="undecorated", code=code, handler="undecorated", **PY).run(action="job")
    assert run.results() == {"output_0": 1, "output_1": "two"}
    run = project.new_function(name="undecorated2", code=code, handler="undecorated", **PY).run(
        action="job", outputs=["one", "two"]
    )
    assert run.results() == {"one": 1, "two": "two"}

    run = project.new_function(name="relog", code=code, handler="relog", **PY).run(action="job")
    assert run.state == "COMPLETED", run.status.message
    logged = run.output("output")
    assert logged.name == "logged" and [d.name for d in project.list_dataitems(name="logged", all_versions=True)] == [
        "logged"
    ]


def test_primitive_run_does_not_load_the_entity_models(dh_home: Path) -> None:
    """A handler with parameters and a primitive result never imports pydantic's entity models in
    the runner (their import is most of a trivial run's start-up), and one that returns a logged
    entity still gets it recognised as an entity."""
    code = """
import sys

def probe(n):
    return [n, "digitalhub_provider.entities" in sys.modules, "pydantic" in sys.modules]

def relog(project):
    import tempfile

    path = tempfile.mkdtemp() + "/note.txt"
    with open(path, "w") as fh:
        fh.write("x")
    return project.log_artifact(name="note", kind="artifact", source=path)
"""
    project = dh.get_or_create_project("demo")
    run = project.new_function(name="probe", code=code, handler="probe", **PY).run(action="job", parameters={"n": 3})
    assert run.state == "COMPLETED", run.status.message
    assert run.results() == {"output": [3, False, False]}
    run = project.new_function(name="relog2", code=code, handler="relog", **PY).run(action="job")
    assert run.state == "COMPLETED", run.status.message
    assert isinstance(run.output("output"), Artifact) and run.output("output").name == "note"


# -- run control ---------------------------------------------------------------------------
SLOW = """
import time

def slow(seconds=30):
    print("started", flush=True)
    time.sleep(seconds)
    return "done"
"""


def test_wait_refresh_and_stop_kills_the_process() -> None:
    fn = dh.new_function(project="demo", name="slow", code=SLOW, handler="slow", **PY)
    lines: list[str] = []
    run = fn.run(action="job", wait=False, on_log=lines.append)
    deadline = time.monotonic() + 30
    while "started" not in lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.refresh().state == "RUNNING"
    pid = run.status.get("pid")
    run.stop()
    run.wait(timeout=30)
    assert run.state == "STOPPED"
    assert dh.get_run(run.key).status.state == "STOPPED"
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    # the runner unwound on SIGTERM: its temporary folder (the run's source) is gone
    assert not list(Path(tempfile.gettempdir()).glob(f"dh-run-{run.id[:8]}-*"))


GATED = """
import time
from pathlib import Path

def gated(gate):
    print("started", flush=True)
    for _ in range(600):  # a minute at most: the gate opens only if the line above was seen meanwhile
        if Path(gate).exists():
            return "the caller saw the line while the handler ran"
        time.sleep(0.1)
    return "the caller never saw the line while the handler ran"
"""


def test_logs_stream_live(tmp_path: Path) -> None:
    fn = dh.new_function(project="demo", name="gated", code=GATED, handler="gated", **PY)
    gate = tmp_path / "gate"

    def on_log(line: str) -> None:
        if line == "started":
            gate.touch()

    run = fn.run(action="job", parameters={"gate": str(gate)}, on_log=on_log)
    assert run.state == "COMPLETED", run.status.message
    assert run.results() == {"output": "the caller saw the line while the handler ran"}
    assert "started" in run.logs()


def test_timeout_kills_and_errors() -> None:
    fn = dh.new_function(project="demo", name="slow", code=SLOW, handler="slow", **PY)
    run = fn.run(action="job", timeout=2)
    assert run.state == "ERROR" and "timed out after 2 s" in (run.status.message or "")
    assert not list(Path(tempfile.gettempdir()).glob(f"dh-run-{run.id[:8]}-*"))


# -- runtime environments ---------------------------------------------------------------------
def test_requirements_env_built_once_reused_and_build_action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = "import six, sys\n\ndef h():\n    return [six.__name__, sys.version_info[1]]\n"
    fn = dh.new_function(
        project="demo",
        name="env",
        code=code,
        handler="h",
        requirements=["six"],
        kind="python",
        python_version="PYTHON3_12",
    )
    lines: list[str] = []
    build = fn.run(action="build", on_log=lines.append)
    assert build.state == "COMPLETED", build.status.message and build.kind == "python+build:run"
    image = build.results()["image"]
    assert image.startswith("venv://python3_12-")
    # the build is recorded on the function's next version, on which later runs go
    built = dh.get_function("env", project="demo")
    assert built.id != fn.id and built.spec["image"] == image and build.results()["function"] == built.key
    assert {k: v for k, v in built.spec.items() if k != "image"} == fn.spec
    run = built.run(action="job", on_log=lines.append)
    assert run.state == "COMPLETED", run.status.message
    assert run.results() == {"output": ["six", 12]}
    assert sum("building runtime environment" in line for line in lines) <= 1  # the envs are shared


def test_build_instructions_run_in_the_environment_the_next_job_uses(dh_home: Path) -> None:
    """The issue's example: an instruction pins six below the requirement's version; the next job of
    the function (by name: its latest version) imports that six. Instructions are part of the cache
    key: other instructions make another environment."""
    code = "import six\n\ndef h():\n    return six.__version__\n"
    fn = dh.new_function(
        project="demo",
        name="pinned",
        python_version="PYTHON3_11",
        code=code,
        handler="h",
        requirements=["six"],
        kind="python",
    )
    pin = "python -m pip install --no-deps --disable-pip-version-check -q six==1.16.0"
    lines: list[str] = []
    build = fn.run(action="build", instructions=[pin, "echo instructions ran > marker.txt"], on_log=lines.append)
    assert build.state == "COMPLETED", build.status.message
    key = build.results()["image"].removeprefix("venv://")
    # the instructions ran in order, in the environment's folder (cached across tests: no log lines then)
    assert (Path(str(get_context().settings.envs_dir)) / key / "marker.txt").read_text() == "instructions ran\n"
    job = dh.get_function("pinned", project="demo").run(action="job")
    assert job.state == "COMPLETED", job.status.message
    assert job.results() == {"output": "1.16.0"}
    other = fn.run(action="build", instructions=["echo another"])
    assert other.state == "COMPLETED", other.status.message
    assert other.results()["image"] != build.results()["image"]


def test_a_failing_instruction_fails_the_build_with_its_output_and_adds_no_version(dh_home: Path) -> None:
    from digitalhub_provider.launchers.envs import env_key
    from digitalhub_provider.runtimes.registry import SERVE_REQUIREMENTS

    fn = dh.new_function(
        project="demo",
        name="broken",
        python_version="PYTHON3_11",
        code="def h():\n    return 1\n",
        handler="h",
        kind="python",
    )
    steps = ["echo first step", "echo it broke >&2; exit 3", "echo never"]
    build = fn.run(action="build", instructions=steps)
    assert build.state == "ERROR"
    message = build.status.message or ""
    assert "build instruction 2 failed (exit code 3): echo it broke >&2; exit 3" in message
    assert "it broke" in message and "never" not in message
    assert [f.id for f in dh.list_functions("demo", all_versions=True) if f.name == "broken"] == [fn.id]
    # the half-built environment is removed
    assert not (Path(str(get_context().settings.envs_dir)) / env_key("PYTHON3_11", SERVE_REQUIREMENTS, steps)).exists()


@pytest.mark.parametrize(
    ("action", "instructions", "message"),
    [
        ("job", ["echo hi"], "instructions: an argument of the build action, not of job"),
        ("build", "echo hi", "instructions must be a list of shell command lines"),
        ("build", ["echo hi", ""], "instructions must be a list of shell command lines"),
        ("build", [3], "instructions must be a list of shell command lines"),
    ],
)
def test_instructions_are_checked_before_anything_runs(
    dh_home: Path, action: str, instructions: Any, message: str
) -> None:
    from digitalhub_provider.errors import EntityError

    fn = dh.new_function(
        project="demo",
        name="checked",
        python_version="PYTHON3_11",
        code="def h():\n    return 1\n",
        handler="h",
        kind="python",
    )
    with pytest.raises(EntityError, match=message):
        fn.run(action=action, instructions=instructions)
    assert dh.list_runs("demo") == []


def test_a_version_whose_built_environment_is_gone_says_to_build_again(dh_home: Path) -> None:
    import shutil

    fn = dh.new_function(
        project="demo",
        name="gone",
        python_version="PYTHON3_11",
        code="def h():\n    return 1\n",
        handler="h",
        kind="python",
    )
    build = fn.run(action="build", instructions=["echo ok"])
    assert build.state == "COMPLETED", build.status.message
    key = build.results()["image"].removeprefix("venv://")
    shutil.rmtree(Path(str(get_context().settings.envs_dir)) / key)
    job = dh.get_function("gone", project="demo").run(action="job")
    assert job.state == "ERROR"
    assert f"the environment {key!r} that built this function version is not in" in (job.status.message or "")
    assert "run the function's build action again" in (job.status.message or "")


def test_concurrent_builds_of_one_environment(tmp_path: Path) -> None:
    from digitalhub_provider.launchers.envs import ensure_environment

    envs = tmp_path / "envs"
    logs: list[str] = []
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_environment(envs, "PYTHON3_11", ["six"], logs.append)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert sum("building" in line for line in logs) == 1
    out = subprocess.run(
        [results[0], "-c", "import six, digitalhub_provider.runtimes; print('ok')"], capture_output=True, text=True
    )
    assert out.stdout.strip() == "ok", out.stderr
    out = subprocess.run([results[0], "-c", "import airflow"], capture_output=True, text=True)
    assert out.returncode != 0  # the runtime environment holds no Airflow


def test_unavailable_python_version_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fn = dh.new_function(
        project="demo", name="old", code="def h(): pass", handler="h", kind="python", python_version="PYTHON3_9"
    )
    run = fn.run(action="job")
    assert run.state == "ERROR" and "PYTHON3_9 cannot run this provider's runner" in (run.status.message or "")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    fn = dh.new_function(
        project="demo", name="new", code="def h(): pass", handler="h", kind="python", python_version="PYTHON3_13"
    )
    run = fn.run(action="job")
    assert run.state == "ERROR" and "PYTHON3_13 is not available on this machine" in (run.status.message or "")


# -- bad input ---------------------------------------------------------------------------------
BAD = """
import pandas as pd
import threading
from digitalhub_provider import handler

def boom():
    raise ValueError("the handler broke")

def needs(a, b):
    return a

@handler(outputs=["one"])
def too_many():
    return 1, 2, 3

@handler(outputs=["frame", "lock"])
def unpicklable():
    return pd.DataFrame({"a": [1]}), threading.Lock()

def logs_then_fails(project):
    project.log_dataitem(name="partial", kind="table", data=pd.DataFrame({"a": [1]}))
    raise RuntimeError("after logging")

def takes_dataitem(di: "Dataitem"):
    return 1

def suicide():
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _assert_error(run: Run, words: str, dh_home: Path) -> None:
    assert run.state == "ERROR", run.status.message
    assert words in (run.status.message or ""), run.status.message
    assert dh.get_run(run.key).status.state == "ERROR"
    assert dh.list_dataitems("demo") == [] or all(d.name == "src" for d in dh.list_dataitems("demo"))
    assert dh.list_artifacts("demo") == []
    leftovers = (
        [p for p in (dh_home / "data" / "demo").rglob("*") if p.is_file()]
        if (dh_home / "data" / "demo").exists()
        else []
    )
    assert leftovers == [], leftovers


@pytest.mark.parametrize(
    "handler, kwargs, words",
    [
        ("boom", {}, "handler 'boom' raised ValueError: the handler broke"),
        ("nothere", {}, "handler 'nothere' not found in main.py"),
        ("needs", {"parameters": {"a": 1}}, "handler argument 'b' is missing"),
        ("needs", {"parameters": {"a": 1, "b": 2, "c": 3}}, "'c' is not an argument of handler 'needs'"),
        ("too_many", {}, "handler returned 3 values but declares 1 output names"),
        ("unpicklable", {}, "output 'lock' (lock) cannot be pickled"),
        ("logs_then_fails", {}, "handler 'logs_then_fails' raised RuntimeError: after logging"),
        ("suicide", {}, "the runner was killed by signal 9 before writing a result"),
    ],
)
def test_bad_handlers(handler: str, kwargs: dict, words: str, dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="bad", code=BAD, handler=handler, **PY)
    _assert_error(fn.run(action="job", **kwargs), words, dh_home)


def test_handler_traceback_is_kept(dh_home: Path) -> None:
    run = dh.new_function(project="demo", name="bad", code=BAD, handler="boom", **PY).run(action="job")
    assert 'raise ValueError("the handler broke")' in run.status.get("traceback")


def test_syntax_error(dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="syn", code="def h(:\n  pass\n", handler="h", **PY)
    _assert_error(fn.run(action="job"), "syntax error in main.py line 1", dh_home)


def test_bad_inputs_fail_before_any_process(dh_home: Path) -> None:
    fn = dh.new_function(project="demo", name="bad", code=BAD, handler="takes_dataitem", **PY)
    with pytest.raises(Exception, match="input 'di': store://demo/dataitem/table/ghost not found"):
        fn.run(action="job", inputs={"di": "store://demo/dataitem/table/ghost"})
    with pytest.raises(Exception, match="input 'di' is a function: inputs must be dataitems"):
        fn.run(action="job", inputs={"di": fn.key})
    with pytest.raises(Exception, match="input 'di' must be an entity key"):
        fn.run(action="job", inputs={"di": "just a string"})
    with pytest.raises(Exception, match="unknown run argument"):
        fn.run(action="job", colour="red")
    with pytest.raises(Exception, match="action 'dance' is not one of python's actions"):
        fn.run(action="dance")
    assert dh.list_runs("demo") == []


def test_input_of_the_wrong_entity_type(dh_home: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    art = dh.log_artifact(project="demo", name="src", source=str(src))
    fn = dh.new_function(project="demo", name="bad", code=BAD, handler="takes_dataitem", **PY)
    run = fn.run(action="job", inputs={"di": art.key})
    assert run.state == "ERROR" and "input 'di' is a artifact but the handler expects a dataitem" in run.status.message


def test_zip_with_parent_entries_is_refused(tmp_path: Path, dh_home: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape.py", "x = 1")
    fn = dh.new_function(project="demo", name="evil", code_src=f"zip+file://{archive}", handler="escape:x", **PY)
    _assert_error(fn.run(action="job"), "refusing to unpack '../../escape.py'", dh_home)
    assert not (tmp_path.parent / "escape.py").exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("/tmp/absolute-escape.py", "refusing to unpack '/tmp/absolute-escape.py' from the source archive: it points"),
        ("link.py", "refusing to unpack 'link.py' from the source archive: symbolic links are not allowed"),
    ],
)  # fmt: skip
def test_zip_with_absolute_or_symlink_entries_is_refused(entry: str, message: str, tmp_path: Path) -> None:
    import stat

    from digitalhub_provider.errors import RunError
    from digitalhub_provider.runtimes.python.sources import safe_unzip

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        if entry == "link.py":  # a link to a file outside the folder, as `zip --symlinks` stores it
            info = zipfile.ZipInfo(entry)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(entry, "x = 1")
    dest = tmp_path / "unpacked"
    with pytest.raises(RunError) as refused:
        safe_unzip(archive, dest)
    assert str(refused.value).startswith(message)
    assert not list(dest.iterdir()) and not Path("/tmp/absolute-escape.py").exists()


def test_missing_git_ref(tmp_path: Path, http_root: tuple[str, Path], dh_home: Path) -> None:
    base, root = http_root
    _git_repo(root)
    fn = dh.new_function(project="demo", name="git", code_src=f"git+{base}/repo.git#nope", handler="pkg.job:run", **PY)
    _assert_error(fn.run(action="job"), "git ref 'nope' does not exist", dh_home)
