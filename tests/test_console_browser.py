"""The console inside a real Airflow (api-server, scheduler, dag-processor with the provider's plugin), in
a real browser: Debian's headless Chromium driven by Selenium. Airflow's login page, the console from
Airflow's navigation, a function through its versions (edit, switch, inspect, export), a run executed by
Airflow to COMPLETED with its log, a long run stopped, a delete with cascade and the old links' "not found"
page, the task's extra link and its task-instance tab (also while its task runs). Each test makes what it
needs itself, in a project of its own (through the REST API, or the pages it tests), so any one passes alone
and in any order. Screenshots go to the module's temporary folder (``DIGITALHUB_TEST_ARTIFACTS`` to keep them
elsewhere)."""

from __future__ import annotations

import base64
import os
import pickle
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.airflow_servers import AirflowDeployment, airflow_deployment, user_env
from tests.browser import Browser, browser_available, chromium

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(browser_available() is not None, reason=str(browser_available())),
]
USER, PASSWORD = "carol", "console-in-airflow-5"
PROJECT = "console"  # the project test_a_project_and_a_function_through_its_versions creates in the browser
DOUBLE_V1 = 'def double(x: int):\n    print("doubling", x)\n    return x * 2\n'
DOUBLE_V2 = 'def double(x: int):\n    print("tripling", x)\n    return x * 3\n'
PRODUCE = (
    "import pandas as pd\n\nfrom digitalhub_provider import handler\n\n\n"
    '@handler(outputs=["cities"])\ndef produce():\n'
    '    return pd.DataFrame({"city": ["Rome", "Trento", "Levico"], "pop": [2800000, 118000, 8000]})\n'
)
CONSUME = 'def consume(di):\n    rows = len(di.as_df())\n    print("rows", rows)\n    return rows\n'
PACK = (
    "from digitalhub_provider import handler\n\n\n"
    '@handler(outputs=["numbers"])\ndef pack():\n    return {2, 3, 5, 7}\n'  # a set: pickled, an artifact
)
LINGER = "import time\n\n\ndef linger(seconds: int):\n    time.sleep(seconds)\n    return seconds\n"
LINGER_ALOUD = (
    "import time\n\n\ndef linger(seconds: int):\n"
    '    print("lingering for", seconds, "seconds", flush=True)\n    time.sleep(seconds)\n    return seconds\n'
)
FINAL = ("COMPLETED", "ERROR", "STOPPED")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-console")
    dh_home = tmp_path_factory.mktemp("dh-console")
    envs = os.environ.get("DIGITALHUB_TEST_ENVS_DIR", "/tmp/dh-test-envs")
    env = {**user_env(home, USER, PASSWORD), "DIGITALHUB_HOME": str(dh_home), "DIGITALHUB_ENVS_DIR": envs}
    with airflow_deployment(home, env, login=(USER, PASSWORD)) as dep:
        dep.wait_dag("digitalhub_runs")
        assert dep.api("PATCH", "dags/digitalhub_runs", json={"is_paused": False}).status_code == 200
        yield dep
    assert dep.left_behind == [], dep.left_behind


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("DIGITALHUB_TEST_ARTIFACTS")
    folder = Path(kept) / "console" if kept else tmp_path_factory.mktemp("console-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(deployment: AirflowDeployment, artifacts: Path) -> Iterator[Browser]:
    """One Chromium for the module, logged in through Airflow's login page (after checking that the
    console shows nothing to a browser without Airflow's session)."""
    with chromium(artifacts / "screenshots", artifacts / "downloads") as b:
        b.get(console(deployment, "/projects/demo/runs"))
        b.wait(lambda: b.all("[data-page=unauthorized]"), message="the console refused without a session")
        assert "Not logged in" in b.text() and not b.all("table")
        b.shot("console-without-session")
        log_in(b, deployment)
        yield b


def log_in(b: Browser, dep: AirflowDeployment) -> None:
    b.get(f"{dep.url}/")
    user = b.find("input[name=username]", timeout=60)
    b.shot("airflow-login")
    user.send_keys(USER)
    b.css("input[name=password]").send_keys(PASSWORD)
    b.button("Sign in").click()
    b.wait(lambda: b.driver.get_cookie("_token"), timeout=60, message="Airflow's session cookie")


def console(dep: AirflowDeployment, route: str = "/") -> str:
    return f"{dep.url}/digitalhub/console/#{route}"


def dh(dep: AirflowDeployment, method: str, path: str, **kw: Any) -> httpx.Response:
    assert dep.client is not None
    headers = {"Authorization": dep.client.headers["Authorization"]}
    return httpx.request(method, f"{dep.url}/digitalhub/api/v1{path}", headers=headers, timeout=30, **kw)


# -- what a test needs, made through the REST API (idempotent: made once, found afterwards) ------------------------
def ensure_project(dep: AirflowDeployment, project: str) -> None:
    if dh(dep, "GET", f"/projects/{project}").status_code == 404:
        body = {"id": project, "name": project, "kind": "project", "metadata": {"project": project}, "spec": {}}
        res = dh(dep, "POST", "/projects", json=body)
        assert res.status_code == 200, res.text


def ensure_function(dep: AirflowDeployment, project: str, name: str, code: str, handler: str) -> dict[str, Any]:
    """The latest version of function ``name`` (in ``project``, made too when missing); a version with this
    code is made when the latest has other code, as the console's form saves a spec change."""
    ensure_project(dep, project)
    source = {"base64": base64.b64encode(code.encode()).decode(), "handler": handler, "lang": "python"}
    found = dh(dep, "GET", f"/-/{project}/functions", params={"name": name}).json()["content"]
    if found and found[0]["spec"].get("source") == source:
        return dict(found[0])
    fid = uuid.uuid4().hex
    body = {
        "id": fid,
        "name": name,
        "kind": "python",
        "project": project,
        "metadata": {"project": project, "name": name},
        "spec": {"python_version": "PYTHON3_11", "source": source},
        "status": {"state": "CREATED"},
    }
    res = dh(dep, "POST", f"/-/{project}/functions", json=body)
    assert res.status_code == 200, res.text
    return dict(res.json())


def post_run(
    dep: AirflowDeployment,
    fn: dict[str, Any],
    parameters: dict[str, Any],
    *,
    state: str = "CREATED",
    run_id: str | None = None,
) -> dict[str, Any]:
    """A task and a run of ``fn`` as the console's New run makes them: a CREATED run is executed by Airflow (the
    ``digitalhub_runs`` DAG); a run in a final state is recorded only (``local_execution``: nobody executes it)."""
    project = fn["project"]
    ref = f"python://{project}/{fn['name']}:{fn['id']}"
    tid, rid = uuid.uuid4().hex, run_id or uuid.uuid4().hex
    task = {
        "id": tid, "name": tid, "kind": "python+job", "project": project, "metadata": {"project": project, "name": tid},
        "spec": {"function": ref}, "status": {"state": "CREATED"},
    }  # fmt: skip
    res = dh(dep, "POST", f"/-/{project}/tasks", json=task)
    assert res.status_code == 200, res.text
    run = {
        "id": rid, "name": rid, "kind": "python+job:run", "project": project,
        "metadata": {"project": project, "name": rid},
        "spec": {"function": ref, "task": f"python+job://{project}/{tid}", "parameters": parameters,
                 "local_execution": state != "CREATED"},
        "status": {"state": state},
    }  # fmt: skip
    res = dh(dep, "POST", f"/-/{project}/runs", json=run)
    assert res.status_code == 200, res.text
    return dict(res.json())


def run_state(dep: AirflowDeployment, project: str, run_id: str) -> str:
    res = dh(dep, "GET", f"/-/{project}/runs/{run_id}")
    assert res.status_code == 200, res.text
    return str(res.json()["status"]["state"])


def wait_for(what: Any, timeout: float, message: str) -> Any:
    """Poll ``what`` (no browser involved) until it returns something truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{message} not met in {timeout}s")


def assert_labelled(b: Browser) -> None:
    assert b.unlabelled_fields() == [], "every form field has a label"


def no_trace(b: Browser) -> None:
    source = b.driver.page_source
    assert "Traceback" not in source and "Error:" not in b.text("body")


# -- the flows: each makes what it needs, in a project of its own -------------------------------------------------
def test_log_in_and_open_the_console_from_airflows_navigation(browser: Browser, deployment: AirflowDeployment) -> None:
    b = browser  # logged in through Airflow's login page (the fixture)
    b.get(f"{deployment.url}/")

    def nav_entry() -> Any:
        hrefs = ((a, (a.get_attribute("href") or "").rstrip("/")) for a in b.all("a"))
        return next((a for a, href in hrefs if href.endswith("/plugin/digitalhub") and a.is_displayed()), None)

    entry = b.wait(nav_entry, timeout=60, message="the DigitalHub entry in Airflow's navigation")
    b.shot("airflow-home")
    entry.click()
    frame = b.find("iframe[title=DigitalHub]")
    assert "/plugin/digitalhub" in b.driver.current_url
    b.driver.switch_to.frame(frame)
    try:
        b.wait_text("Projects")
        b.wait_text("New project")
        assert_labelled(b)
        b.driver.switch_to.default_content()
        b.shot("console-in-airflow")
    finally:
        b.driver.switch_to.default_content()
    # the console's files hold no data and no credentials; the API refuses a request without the session
    assert httpx.get(f"{deployment.url}/digitalhub/api/v1/projects").status_code == 401
    html = httpx.get(f"{deployment.url}/digitalhub/console/").text
    assert '<script type="module" src="js/app.js">' in html and "token" not in html.lower()


def test_a_project_and_a_function_through_its_versions(browser: Browser, deployment: AirflowDeployment) -> None:
    from selenium.webdriver.common.keys import Keys

    b = browser
    b.get(console(deployment, "/"))
    b.wait_text("New project")
    # the API's refusal, next to the field it names
    b.fill("Name", "Not_A_Project")
    b.button("Create project").click()
    error = b.find("[data-field=name] .field-error")
    assert "lower-case letters" in b.wait(lambda: error.text)
    b.shot("project-name-refused")
    b.fill("Name", PROJECT)
    b.fill("Description", "made in the browser")
    b.button("Create project").click()
    b.wait_text("Runs by state")
    assert "made in the browser" in b.text()

    b.get(console(deployment, f"/projects/{PROJECT}/functions/new"))
    b.wait_text("New function")
    assert_labelled(b)
    b.button("Create").click()  # nothing filled in: checked before anything is sent
    assert "needs a name" in b.find("[data-field=name] .field-error").text
    b.fill("Name", "double")
    b.fill("Description", "doubles x")
    b.fill("Labels", "demo, browser")
    b.fill("Python version", "PYTHON3_11")
    b.fill("Code", DOUBLE_V1)
    b.fill("Handler", "double")
    b.shot("function-form")
    b.button("Create").click()
    b.wait_text("Versions")
    assert "doubles x" in b.text() and "demo, browser" in b.text()
    first = b.driver.current_url.rsplit("/", 1)[1]

    # EDIT: name and kind greyed out; a spec change is a second version
    b.button("Edit").click()
    b.wait_text("Edit double")
    assert b.css("[name=name]").get_attribute("disabled") is not None
    assert b.css("[name=kind]").get_attribute("disabled") is not None
    assert_labelled(b)
    b.fill("Code", DOUBLE_V2)
    b.button("Save").click()
    b.wait(lambda: len(b.all(".versions li")) == 2, message="two versions")
    second = b.driver.current_url.rsplit("/", 1)[1]
    assert second != first
    assert b.css(".versions a[aria-current=true]").get_attribute("href").endswith(second)
    assert "tripling" in b.text("[data-testid=code]")
    b.shot("function-v2")

    # switch versions
    old = next(a for a in b.all(".versions a") if a.get_attribute("href").endswith(first))
    old.click()
    b.wait(lambda: "doubling" in b.text("[data-testid=code]"), message="version 1's code")
    assert b.css(".versions a[aria-current=true]").get_attribute("href").endswith(first)

    # INSPECTOR: the entity as JSON
    b.button("Inspector").click()
    inspected = b.find("dialog pre").text
    assert f'"id": "{first}"' in inspected and '"kind": "python"' in inspected
    b.shot("inspector")
    b.find("dialog").send_keys(Keys.ESCAPE)  # a dialog closes with the keyboard
    b.wait(lambda: not b.all("dialog"), message="the inspector closed")

    # EXPORT: the YAML function.export() writes (the entity as stored), named as it names it
    b.button("Export").click()
    exported = b.downloads / f"function-double-{first}.yaml"
    b.wait(lambda: exported.exists() and exported.stat().st_size > 0, message=str(exported))
    stored = dh(deployment, "GET", f"/-/{PROJECT}/functions/{first}").json()
    assert yaml.safe_load(exported.read_text()) == stored

    # the list: filters by name and kind, a row expands to its latest versions
    b.get(console(deployment, f"/projects/{PROJECT}/functions?kind=mlrun"))
    b.wait_text("No function matches")
    b.get(console(deployment, f"/projects/{PROJECT}/functions"))
    b.fill("Name", "double")
    b.fill("Kind", "python")
    b.button("Filter").click()
    b.wait(lambda: "name=double" in b.driver.current_url)
    b.settled()
    toggle = b.find("tr[data-function=double] button[aria-expanded]")
    toggle.send_keys(Keys.ENTER)  # with the keyboard
    assert toggle.get_attribute("aria-expanded") == "true"
    listed = b.wait(lambda: b.text(".versions-row"), message="versions")
    assert first[:8] in listed and second[:8] in listed
    b.shot("functions-list")


def _new_function(b: Browser, dep: AirflowDeployment, project: str, name: str, code: str, handler: str) -> None:
    ensure_project(dep, project)
    b.get(console(dep, f"/projects/{project}/functions/new"))
    b.fill("Name", name)
    b.fill("Code", code)
    b.fill("Handler", handler)
    b.button("Create").click()
    b.wait_text("Versions")


def _create_run(b: Browser, parameters: str, inputs: str = "") -> str:
    b.button("New run").click()
    b.wait_text("Task settings")
    assert_labelled(b)
    b.fill("CPU", "1")
    b.fill("Environment variables", "GREETING=hello")
    b.button("Next").click()
    if inputs:
        b.fill("Inputs", inputs)
    b.fill("Parameters", "[1, 2]")  # not an object: refused before anything is sent
    b.button("Next").click()
    assert "JSON object" in b.find("[data-field=parameters] .field-error").text
    b.fill("Parameters", parameters)
    b.button("Next").click()
    recap = b.find("[data-testid=recap]").text
    assert '"local_execution": false' in recap and '"cpu": "1"' in recap
    b.shot("run-recap")
    b.button("Create run").click()
    b.wait_text("State:")
    return str(b.driver.current_url.rsplit("/", 1)[1])


def test_a_run_executed_by_airflow_to_completed_with_its_log(browser: Browser, deployment: AirflowDeployment) -> None:
    b = browser
    project = "console-run"
    ensure_function(deployment, project, "double", DOUBLE_V2, "double")
    b.get(console(deployment, f"/projects/{project}/functions/double"))
    b.wait_text("Versions")
    run_id = _create_run(b, '{"x": 21}')
    b.wait(lambda: "COMPLETED" in b.text("[data-testid=state]"), timeout=300, message="COMPLETED")
    b.wait(lambda: "tripling 21" in b.text("[data-testid=log]"), timeout=30, message="the log")
    assert "63" in b.text("[data-testid=results]")
    text = b.text()
    assert "RUNNING" in text and "digitalhub_runs" in text  # the timeline, the Airflow DAG run
    b.shot("run-completed")
    # the runs list, filtered in the API
    b.get(console(deployment, f"/projects/{project}/runs?state=COMPLETED"))
    b.wait(lambda: b.all(f"a[data-run='{run_id}']"), message="the run in the list")
    b.get(console(deployment, f"/projects/{project}/runs?state=ERROR"))
    b.wait_text("0 runs")
    b.get(console(deployment, f"/projects/{project}"))
    b.wait(lambda: b.css("[data-state=COMPLETED]").text == "1", message="the dashboard's count")
    b.shot("dashboard")


def test_outputs_inputs_and_the_lineage_graph(browser: Browser, deployment: AirflowDeployment) -> None:
    """A run's output dataitem (a link to its page), a second run that takes it as input, and the first
    run's lineage: function -> run -> dataitem -> the consumer run."""
    b = browser
    project = "console-lineage"
    _new_function(b, deployment, project, "produce", PRODUCE, "produce")
    producer = _create_run(b, "")
    b.wait(lambda: "COMPLETED" in b.text("[data-testid=state]"), timeout=300, message="the producer COMPLETED")
    output = b.find("[data-testid=outputs] a")
    key = output.text
    assert key.startswith(f"store://{project}/dataitem/table/cities:")
    output.click()
    b.settled()
    b.wait_text("Versions")
    assert "cities" in b.text("h1") and "table" in b.text()
    # its preview: the schema and the first rows, as the producer wrote them
    preview = b.find("[data-testid=preview] table")
    headers = [th.text.split()[0] for th in preview.find_elements("css selector", "thead th")]
    assert headers == ["city", "pop"], headers
    cells = [
        [td.text for td in tr.find_elements("css selector", "td")]
        for tr in preview.find_elements("css selector", "tbody tr")
    ]
    assert cells == [["Rome", "2800000"], ["Trento", "118000"], ["Levico", "8000"]], cells
    assert "The first 3 of 3 rows." in b.text("[data-testid=preview]")
    b.shot("output-dataitem")

    _new_function(b, deployment, project, "consume", CONSUME, "consume")
    consumer = _create_run(b, "", inputs=f"di={key}")
    b.wait(lambda: "COMPLETED" in b.text("[data-testid=state]"), timeout=300, message="the consumer COMPLETED")
    assert "rows 3" in b.wait(lambda: b.text("[data-testid=log]"), message="the consumer's log")
    assert key in b.text()  # its input, a link
    b.get(console(deployment, f"/projects/{project}/runs/{producer}"))
    graph = b.find("[data-testid=lineage] svg")
    nodes = [n.get_attribute("data-node") for n in graph.find_elements("css selector", "g.node")]
    assert nodes == ["fn", producer, key, consumer], nodes
    assert "produce" in graph.text and "cities" in graph.text
    b.shot("lineage")


def test_an_artifact_downloads_and_a_vanished_table_says_so(browser: Browser, deployment: AirflowDeployment) -> None:
    """A run's pickled output (an artifact) downloaded from its page with the browser's session; a dataitem whose
    file is gone from the data store shows the API's message where its preview would be."""
    b = browser
    project = "console-files"
    _new_function(b, deployment, project, "pack", PACK, "pack")
    _create_run(b, "")
    b.wait(lambda: "COMPLETED" in b.text("[data-testid=state]"), timeout=300, message="pack COMPLETED")
    output = b.find("[data-testid=outputs] a")
    assert output.text.startswith(f"store://{project}/artifact/")
    artifact_id = output.text.rsplit(":", 1)[1]
    output.click()
    b.settled()
    b.wait_text("Versions")
    assert not b.all("[data-testid=preview]")  # an artifact has no table to show
    b.button("Download").click()
    saved = b.downloads / "numbers.pickle"
    b.wait(lambda: saved.exists() and saved.stat().st_size > 0, message=str(saved))
    b.wait(lambda: not list(b.downloads.glob("*.crdownload")), message="the download finished")
    assert pickle.loads(saved.read_bytes()) == {2, 3, 5, 7}
    b.shot("artifact-downloaded")

    # a table whose file was never written, beside the artifact's on the data store (a path the API may read)
    packed = dh(deployment, "GET", f"/-/{project}/artifacts/{artifact_id}").json()
    vid = uuid.uuid4().hex
    vanished = {
        "id": vid,
        "name": "vanished",
        "kind": "table",
        "project": project,
        "metadata": {"project": project, "name": "vanished"},
        "spec": {"path": packed["spec"]["path"].rsplit("/", 1)[0] + "/missing.parquet"},
        "status": {"state": "CREATED"},
    }
    assert dh(deployment, "POST", f"/-/{project}/dataitems", json=vanished).status_code == 200
    b.get(console(deployment, f"/projects/{project}/dataitems/{vid}"))
    message = b.find("[data-testid=preview-error]").text
    assert "the file of dataitem 'vanished' is gone from the data store" in message, message
    assert "vanished" in b.text("h1")
    no_trace(b)
    b.shot("vanished-dataitem")


def test_stop_a_long_run(browser: Browser, deployment: AirflowDeployment) -> None:
    b = browser
    _new_function(b, deployment, "console-stop", "linger", LINGER, "linger")
    _create_run(b, '{"seconds": 600}')
    b.wait(lambda: "RUNNING" in b.text("[data-testid=state]"), timeout=300, message="RUNNING")
    b.shot("run-running")
    b.button("Stop").click()
    b.find("dialog")
    b.css("dialog button[value=stop]").click()
    b.wait(lambda: "STOPPED" in b.text("[data-testid=state]"), timeout=60, message="STOPPED")
    assert not b.button("Stop").is_enabled()
    b.shot("run-stopped")


def test_delete_with_cascade_then_the_old_links_are_not_found(browser: Browser, deployment: AirflowDeployment) -> None:
    b = browser
    project = "console-delete"
    # double in two versions, a run of it (recorded COMPLETED: the cascade is under test, not its execution), linger
    ensure_function(deployment, project, "double", DOUBLE_V1, "double")
    double = ensure_function(deployment, project, "double", DOUBLE_V2, "double")
    if not dh(deployment, "GET", f"/-/{project}/runs", params={"function": f"python://{project}/double"}).json()[
        "content"
    ]:
        post_run(deployment, double, {"x": 1}, state="COMPLETED")
    ensure_function(deployment, project, "linger", LINGER, "linger")
    runs = dh(deployment, "GET", f"/-/{project}/runs", params={"function": f"python://{project}/double"}).json()
    (run,) = runs["content"]
    fn_url = console(deployment, f"/projects/{project}/functions/double")
    b.get(fn_url)
    b.wait_text("Versions")
    function_page = b.driver.current_url
    b.button("Delete").click()
    b.find("dialog")
    assert_labelled(b)
    b.css("#delete-all").click()
    assert b.css("#delete-cascade").is_selected()
    b.shot("delete-confirmation")
    b.css("dialog button[value=delete]").click()
    b.wait(lambda: b.driver.current_url.endswith("/functions"), message="back to the list")
    b.wait(lambda: "linger" in b.text() and "double" not in b.text(), message="double gone")
    assert dh(deployment, "GET", f"/-/{project}/runs/{run['id']}").status_code == 404  # cascade

    for old in (function_page, console(deployment, f"/projects/{project}/runs/{run['id']}"), fn_url):
        b.get("about:blank")
        b.get(old)
        b.wait(lambda: b.all("[data-page=not-found]"), message=f"not found at {old}")
        assert "Not found" in b.text() and "may have been deleted" in b.text()
        no_trace(b)
    b.shot("not-found")


def test_airflows_trigger_form_then_the_tasks_extra_link_and_tab(
    browser: Browser, deployment: AirflowDeployment
) -> None:
    """``greet_with_params`` triggered from Airflow's own form with a Param; the task's extra link (in the task
    instance's Details) opens the run's page in the console; the task instance's DigitalHub tab shows it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dep = deployment
    b = browser
    dep.wait_dag("greet_with_params")
    assert dep.api("PATCH", "dags/greet_with_params", json={"is_paused": False}).status_code == 200
    b.get(f"{dep.url}/dags/greet_with_params")
    b.button("Trigger").click()
    name = b.find("input[name=element_name]")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("browser")
    b.shot("airflow-trigger-form")
    form = b.find("[role=dialog]")
    next(x for x in form.find_elements(By.CSS_SELECTOR, "button") if x.text.strip() == "Trigger").click()

    def triggered() -> str | None:
        runs = dep.api("GET", "dags/greet_with_params/dagRuns").json()["dag_runs"]
        return next((r["dag_run_id"] for r in runs if (r.get("conf") or {}).get("name") == "browser"), None)

    dag_run = b.wait(triggered, timeout=60, message="the DAG run the form triggered")
    assert dep.wait_run("greet_with_params", dag_run) == "success", dep.diagnostics("greet_with_params", dag_run)
    run = dep.xcom("greet_with_params", dag_run, "greet", "return_value")

    b.get(f"{dep.url}/dags/greet_with_params/runs/{dag_run}/tasks/greet")
    b.button("Details").click()
    page = f"/digitalhub/console/#/projects/demo/runs/{run['run_id']}"

    def extra_link() -> Any:
        return next(
            (a for a in b.all("a") if (a.get_attribute("href") or "").endswith(page) and a.is_displayed()), None
        )

    link = b.wait(extra_link, timeout=60, message="the task's extra link")
    assert link.text.strip() == "DigitalHub run" and link.get_attribute("href") == f"{dep.url}{page}"
    b.shot("airflow-extra-link")
    windows = set(b.driver.window_handles)
    link.click()
    opened = b.wait(lambda: set(b.driver.window_handles) - windows or b.driver.current_url.endswith(page) or None)
    if isinstance(opened, set):  # a new tab
        b.driver.switch_to.window(opened.pop())
    try:
        b.settled()
        b.wait(lambda: "COMPLETED" in b.text("[data-testid=state]"), message="the run's page")
        text = b.text()
        assert '"name": "browser"' in text and "greet_with_params" in text  # the form's Param, its Airflow task
        b.shot("extra-link-run-page")
    finally:
        for handle in set(b.driver.window_handles) - windows:
            b.driver.switch_to.window(handle)
            b.driver.close()
        b.driver.switch_to.window(next(iter(windows)))

    b.get(f"{dep.url}/dags/greet_with_params/runs/{dag_run}/tasks/greet/plugin/digitalhub-run")
    frame = b.find("iframe[title='DigitalHub run']", timeout=60)
    b.driver.switch_to.frame(frame)
    try:
        b.wait(lambda: "COMPLETED" in b.text("[data-testid=state]"), message="the run in the tab")
        assert run["run_id"][:8] in b.text()
    finally:
        b.driver.switch_to.default_content()
    time.sleep(0.5)
    b.shot("task-instance-tab")


def test_the_task_instance_tab_shows_the_run_while_its_task_runs(
    browser: Browser, deployment: AirflowDeployment
) -> None:
    """A task instance's DigitalHub tab opened while its task runs: the run, found by the task instance's labels
    (its return_value XCom exists only once the task ends), RUNNING with its log so far; STOP in the tab stops
    it, and Airflow fails the task."""
    from digitalhub_provider.api.execution import DAG_ID, dag_run_id
    from digitalhub_provider.dags.digitalhub_runs import TASK_ID

    dep = deployment
    b = browser
    project = "console-tab"
    fn = ensure_function(dep, project, "linger", LINGER_ALOUD, "linger")
    rid = uuid.uuid4().hex
    dag_run = dag_run_id(rid)  # the digitalhub_runs DAG run that executes it
    post_run(dep, fn, {"seconds": 600}, run_id=rid)  # the digitalhub_runs task labels it with its task instance
    try:
        wait_for(lambda: run_state(dep, project, rid) == "RUNNING", 300, "the run RUNNING")
        assert dep.task_states(DAG_ID, dag_run).get(TASK_ID) == "running"
        b.get(f"{dep.url}/dags/{DAG_ID}/runs/{dag_run}/tasks/{TASK_ID}/plugin/digitalhub-run")
        frame = b.find("iframe[title='DigitalHub run']", timeout=60)
        b.driver.switch_to.frame(frame)
        try:
            b.wait(lambda: "RUNNING" in b.text("[data-testid=state]"), message="the running run in the tab")
            assert rid[:8] in b.text() and "No DigitalHub run" not in b.text()
            b.wait(lambda: "lingering for 600 seconds" in b.text("[data-testid=log]"), message="its log so far")
            b.shot("task-instance-tab-running")
            b.button("Stop").click()
            b.find("dialog")
            b.css("dialog button[value=stop]").click()
            b.wait(lambda: "STOPPED" in b.text("[data-testid=state]"), timeout=60, message="STOPPED in the tab")
            assert not b.button("Stop").is_enabled()
        finally:
            b.driver.switch_to.default_content()
        b.shot("task-instance-tab-stopped")
    finally:
        if run_state(dep, project, rid) not in FINAL:  # nothing left running when an assertion failed
            dh(dep, "POST", f"/-/{project}/runs/{rid}/stop")
    assert run_state(dep, project, rid) == "STOPPED"
    assert dep.wait_run(DAG_ID, dag_run) == "failed", dep.diagnostics(DAG_ID, dag_run)
