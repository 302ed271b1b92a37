"""P4: the metadata store with 100,000 runs: list one page of a function's runs; create runs.

On SQLite (a file, WAL) and on PostgreSQL (Debian's server, started on a free port in its own
process group, ``fsync=off`` as in the tests). The store is filled with runs of 20 functions
(interleaved, as runs arrive), each a real finished run's body (status, timings, transitions).

* list: ``dh.list_runs(project, function_name=..., limit=50)`` (the SDK: query + entities), p95 over
  many calls on random functions, after the bulk fill has been analyzed (and vacuumed on
  PostgreSQL); the anchor is the same query through the bare DB-API driver (``sqlite3`` /
  ``psycopg2``, bodies parsed with ``json.loads``).
* create: ``RunController.create`` (validation, task lookup, one insert transaction per run), runs per
  second; the anchor inserts the same rows with the bare driver, one transaction each.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from typing import Any

from bench.common import Config, FigureResult, Row, child_env, p95, run_worker, summary, worker_main

MODULE = "bench.p4_metadata"
FUNCTIONS = 20
PAGE = 50
PAGE_P95_TARGET_MS = 10.0
CREATE_TARGET = 300.0
CODE = "def handler(i):\n    return i\n"


# -- worker ---------------------------------------------------------------------------------------------
def measure(runs: int, samples: int, creates: int) -> dict[str, Any]:
    import digitalhub_provider as dh
    from digitalhub_provider.entities import State
    from digitalhub_provider.sdk.context import get_context
    from digitalhub_provider.sdk.controller import RunController

    ctx = get_context()
    controller = RunController(ctx)
    url = ctx.settings.metadata_url
    t0 = time.perf_counter()
    fns = [
        dh.new_function(
            project="bench", name=f"fn-{i:02d}", kind="python", code=CODE, handler="handler",
            python_version=f"PYTHON3_{sys.version_info.minor}",
        )
        for i in range(FUNCTIONS)
    ]  # fmt: skip
    templates: list[str] = []
    for fn in fns:  # one real finished run per function: the shape every clone takes
        run = controller.create(fn, parameters={"i": 0}, local_execution=True, labels=["airflow.dag_id=bench"])
        for state in (State.BUILT, State.READY, State.RUNNING):
            controller.transition(run, state)
        run.status.results = {"output": 1}  # type: ignore[attr-defined]
        controller.transition(run, State.COMPLETED)
        templates.append(json.dumps(run.to_dict()).replace(run.id, "@ID@"))
    batch: list[tuple[str, dict[str, Any]]] = []
    for i in range(runs - FUNCTIONS):
        batch.append(("run", json.loads(templates[i % FUNCTIONS].replace("@ID@", uuid.uuid4().hex))))
        if len(batch) == 5000:
            ctx.metadata.write(create=batch)
            batch = []
    if batch:
        ctx.metadata.write(create=batch)
    fill_s = time.perf_counter() - t0
    total = len(ctx.metadata.list("bench", "run"))
    raw = RawStore(url)
    raw.settle()

    rng = random.Random(6)
    names = [fn.name for fn in fns]
    sdk_page, raw_page, store_page, deep_page = [], [], [], []
    for _ in range(5):  # warm caches and the connection pool
        dh.list_runs("bench", function_name=names[0], limit=PAGE)
        raw.page("bench", names[0], PAGE, 0)
    for _ in range(samples):
        name = rng.choice(names)
        a = time.perf_counter()
        got = dh.list_runs("bench", function_name=name, limit=PAGE)
        b = time.perf_counter()
        raw_rows = raw.page("bench", name, PAGE, 0)
        c = time.perf_counter()
        ctx.metadata.list("bench", "run", function_name=name, limit=PAGE)
        d = time.perf_counter()
        dh.list_runs("bench", function_name=name, limit=PAGE, offset=runs // FUNCTIONS // 2)
        e = time.perf_counter()
        if len(got) != PAGE or len(raw_rows) != PAGE:
            raise RuntimeError(f"a page of {len(got)} / {len(raw_rows)} runs, expected {PAGE}")
        sdk_page.append(b - a)
        raw_page.append(c - b)
        store_page.append(d - c)
        deep_page.append(e - d)

    create_s = []
    for i in range(creates):
        fn = fns[i % FUNCTIONS]
        a = time.perf_counter()
        controller.create(fn, parameters={"i": i}, local_execution=True, labels=["airflow.dag_id=bench"])
        create_s.append(time.perf_counter() - a)
    raw_create_s = []
    for i in range(creates):
        body = json.loads(templates[i % FUNCTIONS].replace("@ID@", uuid.uuid4().hex))
        a = time.perf_counter()
        raw.insert(body)
        raw_create_s.append(time.perf_counter() - a)
    raw.close()
    return {
        "url": url.split("@")[-1],
        "runs": total,
        "fill_s": fill_s,
        "body_bytes": len(templates[0]),
        "page_sdk_s": sdk_page,
        "page_raw_s": raw_page,
        "page_store_s": store_page,
        "page_deep_sdk_s": deep_page,
        "create_s": create_s,
        "create_raw_s": raw_create_s,
    }


class RawStore:
    """The anchor: the same table through the bare DB-API driver, no SQLAlchemy, no entities."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite:
            import sqlite3

            self.conn: Any = sqlite3.connect(str(parsed.database), isolation_level=None, timeout=60)
            for pragma in ("journal_mode=WAL", "busy_timeout=60000", "synchronous=NORMAL"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.mark = "?"
        else:
            import psycopg2

            self.conn = psycopg2.connect(
                host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
            )
            self.mark = "%s"

    def settle(self) -> None:
        """What one does after a bulk load of 100,000 rows: refresh the planner's statistics (and on
        PostgreSQL vacuum, which also sets the rows' visibility hints): otherwise autovacuum and the
        first reads of each row do that work in the middle of the timed listing."""
        if self.sqlite:
            self.conn.execute("ANALYZE")
            return
        self.conn.autocommit = True
        cur = self.conn.cursor()
        cur.execute("VACUUM ANALYZE dh_entities")
        cur.close()
        self.conn.autocommit = False

    def page(self, project: str, function: str, limit: int, offset: int) -> list[dict[str, Any]]:
        m = self.mark
        sql = (
            f"SELECT body FROM dh_entities WHERE project = {m} AND entity_type = 'run' AND function_name = {m} "
            f"ORDER BY pk DESC LIMIT {m} OFFSET {m}"
        )
        cur = self.conn.cursor()
        cur.execute(sql, (project, function, limit, offset))
        rows = [json.loads(r[0]) for r in cur.fetchall()]
        cur.close()
        if not self.sqlite:
            self.conn.commit()
        return rows

    def insert(self, body: dict[str, Any]) -> None:
        m = self.mark
        spec = body["spec"]
        fname, fid = spec["function"].rsplit("/", 1)[-1].split(":")
        sql = (
            "INSERT INTO dh_entities (id, project, entity_type, kind, name, state, function_name, function_id, body) "
            f"VALUES ({', '.join([m] * 9)})"
        )
        values = (body["id"], body["project"], "run", body["kind"], body["name"], body["status"].get("state"),
                  fname, fid, json.dumps(body, separators=(",", ":")))  # fmt: skip
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(sql, values)
            cur.execute("COMMIT")
        else:
            cur.execute(sql, values)
            self.conn.commit()
        cur.close()

    def close(self) -> None:
        self.conn.close()


# -- the figure ----------------------------------------------------------------------------------------------
def run(cfg: Config, fig: FigureResult) -> None:
    from tests.servers import postgres_server

    runs = cfg.size(100_000, 10_000)
    samples = cfg.size(300, 100)  # list calls timed (not --repeats)
    creates = cfg.size(2_000, 500)
    base = cfg.figure_dir("P4")
    args = {"runs": runs, "samples": samples, "creates": creates}
    sqlite_home = base / "sqlite"
    res = {"SQLite": run_worker(MODULE, "measure", args, child_env(sqlite_home, cfg.envs_dir), base / "workers.log")}
    cfg.log("P4 SQLite done")
    pg_base = base / "pg"
    pg_base.mkdir(exist_ok=True)
    with postgres_server(pg_base) as url:
        env = child_env(pg_base, cfg.envs_dir, {"DIGITALHUB_METADATA_URL": url})
        res["PostgreSQL"] = run_worker(MODULE, "measure", args, env, base / "workers.log")
    cfg.log("P4 PostgreSQL done")

    for backend, worker in res.items():
        d = worker.data
        page_ms = p95(d["page_sdk_s"]) * 1000
        fig.rows.append(
            Row("P4", f"list a page of {PAGE} of a function's runs (p95), {backend}, {d['runs']:,} runs", page_ms,
                "ms", f"bare {'sqlite3' if backend == 'SQLite' else 'psycopg2'} query", p95(d["page_raw_s"]) * 1000,
                f"≤ {PAGE_P95_TARGET_MS:g} ms", page_ms <= PAGE_P95_TARGET_MS)
        )  # fmt: skip
    for backend, worker in res.items():
        d = worker.data
        rate = len(d["create_s"]) / sum(d["create_s"])
        raw_rate = len(d["create_raw_s"]) / sum(d["create_raw_s"])
        target = backend == "SQLite"
        fig.rows.append(
            Row("P4", f"create runs (RunController.create), {backend}", rate, "runs/s",
                f"bare {'sqlite3' if backend == 'SQLite' else 'psycopg2'} insert", raw_rate,
                f"≥ {CREATE_TARGET:g} runs/s" if target else "", (rate >= CREATE_TARGET) if target else None)
        )  # fmt: skip
    fig.details.update(
        {
            backend: {
                "runs": w.data["runs"],
                "functions": FUNCTIONS,
                "page_size": PAGE,
                "fill_seconds": round(w.data["fill_s"], 1),
                "run_body_bytes": w.data["body_bytes"],
                "page_ms": {
                    k.removeprefix("page_").removesuffix("_s"): {
                        s: round(v * 1000, 3) if isinstance(v, float) else v for s, v in summary(w.data[k]).items()
                    }
                    for k in ("page_sdk_s", "page_raw_s", "page_store_s", "page_deep_sdk_s")
                },
                "create_ms": {
                    k: {s: round(v * 1000, 3) if isinstance(v, float) else v for s, v in summary(w.data[k]).items()}
                    for k in ("create_s", "create_raw_s")
                },
                "worker_peak_rss_mb": round(w.maxrss_bytes / 1024 / 1024),
            }
            for backend, w in res.items()
        }
    )


if __name__ == "__main__":
    worker_main({"measure": measure})
