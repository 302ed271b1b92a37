"""The console's wiring, without a browser: the plugin's views as Airflow 3.3 reads them, the static files
served (and what they import present), and a plugin module that stays light to import."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from digitalhub_provider.api.plugin import CONSOLE_URL, DigitalHubPlugin

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

STATIC = Path(__file__).resolve().parent.parent / "digitalhub_provider" / "console" / "static"


def test_the_views_are_what_airflows_ui_reads() -> None:
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    views = {v["destination"]: ExternalViewResponse.model_validate(v) for v in DigitalHubPlugin.external_views}
    assert set(views) == {"nav", "task_instance"}
    assert views["nav"].name == "DigitalHub" and views["nav"].href == CONSOLE_URL == "/digitalhub/console/"
    assert views["nav"].url_route == "digitalhub"
    tab = views["task_instance"]
    assert tab.href == "/digitalhub/console/#/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}"
    assert tab.url_route and tab.url_route != views["nav"].url_route  # Airflow drops a view whose route is taken


def test_the_plugin_module_imports_no_web_framework() -> None:
    """Airflow imports plugins in every task process: the app, the console and FastAPI load on the first request."""
    code = (
        "import sys, digitalhub_provider.api.plugin\n"
        "print(sorted(m for m in ('fastapi', 'starlette', 'digitalhub_provider.console', "
        "'digitalhub_provider.api.app') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from digitalhub_provider.api.app import create_app
    from digitalhub_provider.api.plugin import mount_console

    app = create_app()
    mount_console(app)
    root = FastAPI()
    root.mount("/digitalhub", app)
    with TestClient(root) as c:
        yield c


def test_the_console_is_served_with_every_file_it_imports(client: TestClient) -> None:
    page = client.get("/digitalhub/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    wanted = re.findall(r'(?:src|href)="([^"#:]+)"', html)
    assert "js/app.js" in wanted and "console.css" in wanted
    seen: set[str] = set()
    while wanted:
        path = wanted.pop()
        if path in seen:
            continue
        seen.add(path)
        res = client.get(f"/digitalhub/console/{path}")
        assert res.status_code == 200, path
        if path.endswith(".js"):
            assert res.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript"), path
            folder = str(Path(path).parent)
            for imported in re.findall(r'from "\./([^"]+)"', res.text):
                wanted.append(f"{folder}/{imported}")
    assert {f"js/{p.name}" for p in (STATIC / "js").glob("*.js")} <= seen  # no module left unused
    assert client.get("/digitalhub/console/js/missing.js").status_code == 404


def test_no_entity_content_reaches_the_dom_as_html() -> None:
    """Entity content goes in as text (textContent, text nodes): the console never parses strings as HTML."""
    for path in STATIC.rglob("*.js"):
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"
