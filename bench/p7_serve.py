"""P7: a python function served on the local launcher against a bare ASGI app doing the same work.

The served handler echoes its JSON body (``json.loads`` then a dict back: nuclio-sdk's conversion to
JSON); the anchor is a bare ASGI application, on the same server (uvicorn, one worker process, its
own process group) that parses and answers the same JSON. Both are driven by the same bounded load
generator in this process: ``CLIENTS`` threads, each on one keep-alive connection, sending requests
back to back; requests per second over the whole round, and p50/p99 latency of every request.
Rounds alternate between the two, median of the rounds. Target: ≥ 0.8x the bare app's throughput,
p99 ≤ 1.3x its p99.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Config, FigureResult, median, percentile, ratio_row

CLIENTS = 8
BODY = json.dumps({"rows": [[1.5, 2.0, 3.25]] * 8, "id": "bench"}).encode()
ECHO = """
import json

def echo(context, event):
    return {"echo": json.loads(event.body)}
"""
BARE = """
import json, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    raw = json.dumps({"echo": json.loads(body)}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load(host: str, port: int, per_client: int) -> dict[str, Any]:
    """``CLIENTS`` connections sending ``per_client`` POSTs each: throughput and latencies (ms)."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    start = threading.Barrier(CLIENTS + 1)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        headers = {"content-type": "application/json"}
        start.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            conn.request("POST", "/", body=BODY, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            latencies[i].append((time.perf_counter() - t0) * 1000)
            if answer.status != 200 or json.loads(data)["echo"]["id"] != "bench":
                errors.append(f"{answer.status} {data[:80]!r}")
                return
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"P7: bad answers: {errors[:3]}")
    every = [v for per in latencies for v in per]
    return {"rps": len(every) / elapsed, "p50": percentile(every, 50), "p99": percentile(every, 99)}


def run(cfg: Config, fig: FigureResult) -> None:
    base = cfg.figure_dir("P7")
    per_client = cfg.size(1500, 300)
    rounds = cfg.reps(full=5, quick=3)
    os.environ["DIGITALHUB_HOME"] = str(base / "dh")
    from digitalhub_provider.sdk.context import reset_context

    reset_context()
    import digitalhub_provider as dh

    fn = dh.new_function(project="bench", name="echo", kind="python", code=ECHO, handler="echo",
                         python_version=f"PYTHON3_{sys.version_info.minor}")  # fmt: skip
    served = fn.run(action="serve", replicas=1, on_log=lambda _line: None)
    port = _free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE, str(port)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_listening("127.0.0.1", port)
        service = served.status.get("service")
        targets = {"served": (service["host"], int(service["port"])), "bare": ("127.0.0.1", port)}
        for host, p in targets.values():  # warm-up: connections, imports, the handler's first call
            load(host, p, 50)
        results: dict[str, list[dict[str, Any]]] = {"served": [], "bare": []}
        for i in range(rounds):
            for name in ("served", "bare") if i % 2 == 0 else ("bare", "served"):
                results[name].append(load(*targets[name], per_client))
            cfg.log(f"P7 round {i + 1}/{rounds}: served {results['served'][-1]['rps']:.0f} rps, "
                    f"bare {results['bare'][-1]['rps']:.0f} rps")  # fmt: skip
    finally:
        served.stop()
        os.killpg(bare.pid, signal.SIGTERM)
        bare.wait(10)
    got = {name: {k: median([r[k] for r in rs]) for k in ("rps", "p50", "p99")} for name, rs in results.items()}
    s, b = got["served"], got["bare"]
    fig.rows.append(ratio_row("P7", f"served JSON echo, {CLIENTS} clients, requests per second (median)", s["rps"],
                              "req/s", "bare ASGI app, same server", b["rps"], 0.8, higher_is_better=True))  # fmt: skip
    fig.rows.append(ratio_row("P7", "served JSON echo, p99 latency", s["p99"], "ms", "bare ASGI app, same server",
                              b["p99"], 1.3))  # fmt: skip
    fig.rows.append(ratio_row("P7", "served JSON echo, p50 latency", s["p50"], "ms", "bare ASGI app, same server",
                              b["p50"], None, note="no target"))  # fmt: skip
    fig.details.update({"clients": CLIENTS, "requests_per_client": per_client, "rounds": rounds, "median": got,
                        "rounds_detail": results})  # fmt: skip


def _wait_listening(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"P7: the bare app did not listen on {host}:{port}")


if __name__ == "__main__":  # pragma: no cover - python -m bench --only P7 is the way in
    print(Path(__file__).name, "runs through: python -m bench --only P7")
