"""P8: the REST API with 100,000 runs: a page of a function's runs; entities created per second.

The standalone server (``python -m digitalhub_provider.api``, uvicorn, one process in its own
process group) over a SQLite store filled with runs of 20 functions, as the official SDK writes
them (``python://bench/fn-07:ID`` references). A client on a kept-alive HTTP connection (httpx):

* page: ``GET /api/v1/-/bench/runs?function=...&page=N`` (a page of 20 and its count), p95 over
  many calls on random functions and pages; the anchor is the same two queries on the store
  directly (``MetadataStore.list`` + ``count``) in the client's process;
* create: ``POST /api/v1/-/bench/runs`` one run at a time, entities per second; the anchor writes
  the same run with ``MetadataStore.write`` (one transaction each), without HTTP and the API's checks.

The ratio of each pair is what the API costs over its store.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from typing import Any

from bench.common import (
    PYTHON,
    Config,
    FigureResult,
    Row,
    child_env,
    p95,
    ratio_row,
    run_worker,
    summary,
    worker_main,
)

MODULE = "bench.p8_rest_api"
FUNCTIONS = 20
PAGE = 20
PAGE_P95_TARGET_MS = 20.0
CREATE_TARGET = 300.0
CODE_B64 = "ZGVmIGhhbmRsZXIoaSk6CiAgICByZXR1cm4gaQo="  # def handler(i): return i


def run_body(fid: str, fname: str, task_id: str, state: str = "COMPLETED") -> dict[str, Any]:
    rid = uuid.uuid4().hex
    ref = f"python://bench/{fname}:{fid}"
    return {
        "id": rid, "name": rid, "kind": "python+job:run", "project": "bench", "user": None,
        "key": f"store://bench/run/python+job:run/{rid}",
        "metadata": {"project": "bench", "name": rid, "created": "2026-12-02T10:00:00.000Z",
                     "updated": "2026-12-02T10:00:01.000Z", "embedded": False,
                     "relationships": [{"type": "run_of", "dest": f"store://bench/function/python/{fname}:{fid}"}]},
        "spec": {"task": f"python+job://bench/{task_id}", "function": ref, "local_execution": True,
                 "parameters": {"i": 1}, "inputs": {}, "python_version": "PYTHON3_11",
                 "source": {"handler": "handler", "base64": CODE_B64, "lang": "python"}},
        "status": {"state": state, "results": {"output": 1}, "outputs": {}},
    }  # fmt: skip


# -- the client worker ---------------------------------------------------------------------------------------
def measure(url: str, runs: int, samples: int, creates: int) -> dict[str, Any]:
    import httpx

    from digitalhub_provider.sdk.context import get_context

    store = get_context().metadata
    client = httpx.Client(base_url=url, timeout=60)
    project = {"id": "bench", "name": "bench", "kind": "project", "spec": {}}
    client.post("/api/v1/projects", json=project).raise_for_status()
    fns = []
    for i in range(FUNCTIONS):
        fid, name = uuid.uuid4().hex, f"fn-{i:02d}"
        spec = {"python_version": "PYTHON3_11", "source": {"handler": "handler", "base64": "eA=="}}
        body = {"id": fid, "name": name, "kind": "python", "project": "bench", "spec": spec}
        client.post("/api/v1/-/bench/functions", json=body).raise_for_status()
        fns.append((fid, name, uuid.uuid4().hex))
    t0 = time.perf_counter()
    batch: list[tuple[str, dict[str, Any]]] = []
    for i in range(runs):
        fid, name, tid = fns[i % FUNCTIONS]
        batch.append(("run", run_body(fid, name, tid)))
        if len(batch) == 5000:
            store.write(create=batch)
            batch = []
    if batch:
        store.write(create=batch)
    fill_s = time.perf_counter() - t0
    import sqlite3

    from digitalhub_provider.stores.metadata.connections import sqlite_path

    with sqlite3.connect(sqlite_path(store.url)) as conn:
        conn.execute("ANALYZE")

    rng = random.Random(8)
    per_function = runs // FUNCTIONS
    api_page, store_page = [], []
    for i in range(5 + samples):
        fid, name, _ = rng.choice(fns)
        page = rng.randrange(per_function // PAGE)
        ref = f"python://bench/{name}:{fid}"
        a = time.perf_counter()
        res = client.get("/api/v1/-/bench/runs", params={"function": ref, "page": page})
        res.raise_for_status()
        got = res.json()
        b = time.perf_counter()
        direct = store.list("bench", "run", function_name=name, function_id=fid, limit=PAGE, offset=page * PAGE)
        store.count("bench", "run", function_name=name, function_id=fid)
        c = time.perf_counter()
        if len(got["content"]) != PAGE or len(direct) != PAGE or got["totalElements"] != per_function:
            raise RuntimeError(f"a page of {len(got['content'])} / {len(direct)} runs, expected {PAGE}")
        if i >= 5:  # the first calls warm the connection and the caches
            api_page.append(b - a)
            store_page.append(c - b)

    api_create, store_create = [], []
    for i in range(creates):
        fid, name, tid = fns[i % FUNCTIONS]
        body = run_body(fid, name, tid, state="CREATED")
        a = time.perf_counter()
        client.post("/api/v1/-/bench/runs", json=body).raise_for_status()
        b = time.perf_counter()
        store.write(create=[("run", run_body(fid, name, tid, state="CREATED"))])
        c = time.perf_counter()
        api_create.append(b - a)
        store_create.append(c - b)
    client.close()
    return {
        "runs": store.count("bench", "run"),
        "fill_s": fill_s,
        "page_api_s": api_page,
        "page_store_s": store_page,
        "create_api_s": api_create,
        "create_store_s": store_create,
    }


def _ms(stats: dict[str, float | int]) -> dict[str, float | int]:
    return {k: round(v * 1000, 3) if isinstance(v, float) else v for k, v in stats.items()}


# -- the figure ----------------------------------------------------------------------------------------------
def run(cfg: Config, fig: FigureResult) -> None:
    from tests.servers import free_port, process_group

    runs = cfg.size(100_000, 10_000)
    samples = cfg.size(500, 100)
    creates = cfg.size(2_000, 300)
    base = cfg.figure_dir("P8")
    env = child_env(base, cfg.envs_dir)
    port = free_port()
    server = [PYTHON, "-m", "digitalhub_provider.api", "--host", "127.0.0.1", "--port", str(port),
              "--log-level", "warning"]  # fmt: skip
    with process_group(server, port, base / "server.log", env=env):
        args = {"url": f"http://127.0.0.1:{port}", "runs": runs, "samples": samples, "creates": creates}
        d = run_worker(MODULE, "measure", args, env, base / "workers.log").data
    cfg.log("P8 done")
    page_ms, store_ms = p95(d["page_api_s"]) * 1000, p95(d["page_store_s"]) * 1000
    rate = len(d["create_api_s"]) / sum(d["create_api_s"])
    store_rate = len(d["create_store_s"]) / sum(d["create_store_s"])
    fig.rows += [
        Row("P8", f"a page of {PAGE} of a function's runs through HTTP (p95), {d['runs']:,} runs", page_ms, "ms",
            "the same list + count on the store", store_ms, f"≤ {PAGE_P95_TARGET_MS:g} ms",
            page_ms <= PAGE_P95_TARGET_MS, page_ms / store_ms if store_ms else None),
        Row("P8", "runs created through HTTP, one POST each", rate, "entities/s", "MetadataStore.write, one each",
            store_rate, f"≥ {CREATE_TARGET:g} entities/s", rate >= CREATE_TARGET, rate / store_rate),
        ratio_row("P8", "the API's cost on a page (ratio of p95s)", page_ms, "ms", "store", store_ms, None),
    ]  # fmt: skip
    fig.details.update(
        {
            "runs": d["runs"],
            "functions": FUNCTIONS,
            "page_size": PAGE,
            "fill_seconds": round(d["fill_s"], 1),
            "ms": {
                k.removesuffix("_s"): _ms(summary(d[k]))
                for k in ("page_api_s", "page_store_s", "create_api_s", "create_store_s")
            },
            "server": "uvicorn, one process, SQLite",
            "python": sys.version.split()[0],
        }
    )


if __name__ == "__main__":
    worker_main({"measure": measure})
