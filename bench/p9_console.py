"""P9: the console's runs page with 100,000 runs in the store, in headless Chromium.

The REST API and the console (as the plugin serves them inside Airflow, minus Airflow's token check)
over a SQLite store of 100,000 runs, served by uvicorn in its own process group. For the first page of
runs, then the runs filtered by state: the time from navigation to the page drawn (the console's
``console:rendered`` performance mark, relative to the navigation's start), median of 5; the anchor is
the same page fetched from the API alone (median of 5), so the ratio is what the browser adds. Target:
≤ 1 s. Debian's Chromium and chromedriver, driven by Selenium (``tests/browser.py``).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Config, FigureResult, Row

TARGET_MS = 1000.0
STATES = ("COMPLETED", "COMPLETED", "COMPLETED", "ERROR", "STOPPED", "RUNNING")
PAGES = (("first_page", "/projects/p9/runs", {}), ("state_error", "/projects/p9/runs?state=ERROR", {"state": "ERROR"}))
SERVER = """
import sys, uvicorn
from fastapi import FastAPI
from digitalhub_provider.api.app import create_app
from digitalhub_provider.api.plugin import URL_PREFIX, mount_console
app = create_app()
mount_console(app)
root = FastAPI()
root.mount(URL_PREFIX, app)
uvicorn.run(root, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _run(fid: str, state: str, n: int) -> dict[str, Any]:
    rid = uuid.uuid4().hex
    stamp = f"2026-12-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    return {
        "id": rid, "name": rid, "kind": "python+job:run", "project": "p9",
        "key": f"store://p9/run/python+job:run/{rid}",
        "metadata": {"project": "p9", "name": rid, "created": stamp, "updated": stamp},
        "spec": {"task": f"python+job://p9/{fid}", "function": f"python://p9/fn:{fid}", "local_execution": True,
                 "parameters": {"i": n}},
        "status": {"state": state, "results": {"output": n}},
    }  # fmt: skip


def fill(home: Path, runs: int) -> None:
    """A SQLite store in ``home`` with project ``p9``, one function and ``runs`` runs in :data:`STATES`."""
    from digitalhub_provider.stores.metadata import open_metadata_store

    store = open_metadata_store(f"sqlite:///{home / 'metadata.db'}")
    fid = uuid.uuid4().hex
    project = {"id": "p9", "name": "p9", "kind": "project", "project": "p9", "key": "store://p9",
               "metadata": {"project": "p9", "name": "p9"}, "spec": {}, "status": {"state": "CREATED"}}  # fmt: skip
    fn = {"id": fid, "name": "fn", "kind": "python", "project": "p9", "key": f"store://p9/function/python/fn:{fid}",
          "metadata": {"project": "p9", "name": "fn", "version": fid},
          "spec": {"python_version": "PYTHON3_11", "source": {"base64": "eA==", "handler": "h"}},
          "status": {"state": "CREATED"}}  # fmt: skip
    store.write(create=[("project", project), ("function", fn)])
    batch: list[tuple[str, dict[str, Any]]] = []
    for n in range(runs):
        batch.append(("run", _run(fid, STATES[n % len(STATES)], n)))
        if len(batch) == 5000:
            store.write(create=batch)
            batch = []
    if batch:
        store.write(create=batch)


def expected_total(runs: int, state: str | None) -> int:
    return runs if state is None else sum(1 for n in range(runs) if STATES[n % len(STATES)] == state)


@contextmanager
def console_server(home: Path, log: Path) -> Iterator[str]:
    """The API and the console over ``home``'s store; the console's base URL (``.../digitalhub``)."""
    import os

    from tests.servers import free_port, process_group

    port = free_port()
    env = {**os.environ, "DIGITALHUB_HOME": str(home)}
    env.pop("DIGITALHUB_METADATA_URL", None)
    with process_group([sys.executable, "-c", SERVER, str(port)], port, log, env=env):
        yield f"http://127.0.0.1:{port}/digitalhub"


def measure(base: str, runs: int, samples: int, screenshots: Path) -> dict[str, Any]:
    """Milliseconds per page (median of ``samples``) from the API alone and drawn in the browser,
    checking each page's rows and total; the totals the pages showed."""
    import httpx

    from tests.browser import chromium

    ms: dict[str, float] = {}
    shown: dict[str, str] = {}
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as client:
        for name, _route, query in PAGES:
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                page = client.get("/-/p9/runs", params={**query, "page": 0, "size": 20})
                if page.status_code != 200 or len(page.json()["content"]) != 20:
                    raise RuntimeError(f"the API's {name}: {page.status_code} {page.text[:300]}")
                times.append((time.perf_counter() - t0) * 1000)
            ms[f"api_{name}"] = round(statistics.median(times), 1)
    with chromium(screenshots, screenshots.parent / "downloads") as b:
        for name, route, _query in PAGES:
            times = []
            for _ in range(samples):
                b.driver.get("about:blank")
                b.driver.get(f"{base}/console/#{route}")
                b.settled(timeout=60)
                marks = b.driver.execute_script(
                    "return performance.getEntriesByName('console:rendered').map(m => [m.detail, m.startTime]);"
                )
                (drawn,) = [t for detail, t in marks if detail == f"#{route}"]
                if len(b.all("table.list tbody tr")) != 20:
                    raise RuntimeError(f"the console's {name} does not show 20 runs")
                times.append(float(drawn))
            ms[f"browser_{name}"] = round(statistics.median(times), 1)
            shown[name] = b.text("[data-testid=total]")
            b.shot(f"p9-{name}")
    return {"ms": ms, "totals": shown}


def run(cfg: Config, fig: FigureResult) -> None:
    runs = cfg.size(100_000, 10_000)
    samples = cfg.reps(full=5, quick=3)
    base = cfg.figure_dir("P9")
    home = base / "dh"
    home.mkdir(exist_ok=True)
    started = time.perf_counter()
    fill(home, runs)
    fill_s = time.perf_counter() - started
    with console_server(home, base / "server.log") as url:
        d = measure(url, runs, samples, base / "screenshots")
    cfg.log("P9 done")
    for name, _route, query in PAGES:
        wanted = f"{expected_total(runs, query.get('state')):,}".replace(",", "")
        if d["totals"][name].replace(",", "") != f"{wanted} runs":
            raise RuntimeError(f"P9 {name}: the page shows {d['totals'][name]!r}, expected {wanted} runs")
        browser, api = d["ms"][f"browser_{name}"], d["ms"][f"api_{name}"]
        what = "the runs page" if name == "first_page" else "the runs page filtered by state"
        fig.rows.append(
            Row("P9", f"{what} drawn in headless Chromium (median), {runs:,} runs", browser, "ms",
                "the same page from the API alone", api, f"≤ {TARGET_MS:g} ms", browser <= TARGET_MS,
                browser / api if api else None)
        )  # fmt: skip
    fig.details.update({"runs": runs, "samples": samples, "fill_seconds": round(fill_s, 1), **d})
