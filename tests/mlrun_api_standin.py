"""A stand-in MLRun API server: what ``mlrun.db.httpdb.HTTPRunDB`` (mlrun 1.12.1) calls to register a run.

Run as ``python -m tests.mlrun_api_standin PORT``. It serves:

- ``GET /api/v1/client-spec`` (``HTTPRunDB.connect()``: a version the client accepts);
- ``GET /api/v1/projects/{project}`` (404 when unknown) and ``POST /api/v1/projects``;
- ``POST`` / ``DELETE /api/v1/projects/{project}/runs/{uid}?iter=N`` (``store_run`` / ``del_run``);
- ``PUT`` / ``DELETE /api/v2/projects/{project}/artifacts/{key}?tree=...`` (``store_artifact`` / ``del_artifact``).

and, for the tests: ``GET /_state`` (the projects, runs and artifacts it holds, the calls it got and
the Authorization and Cookie headers it saw), ``POST /_reset`` and ``POST /_fail`` with
``{"artifacts_after": N, "status": 500}``: every artifact store after the first N answers ``status``.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "1.12.1"
_lock = threading.Lock()
STATE: dict[str, Any] = {}


def reset() -> None:
    STATE.clear()
    STATE.update(projects={}, runs={}, artifacts={}, calls=[], auth=[], fail={}, artifact_stores=0)


reset()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"standin: {format % args}\n")

    # -- plumbing ------------------------------------------------------------------------------
    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        body = self._body()
        with _lock:
            if not parts[0].startswith("_"):
                STATE["calls"].append(f"{method} {url.path}")
                for header in ("Authorization", "Cookie"):
                    if self.headers.get(header):
                        STATE["auth"].append(f"{header}: {self.headers[header]}")
            status, reply = self._handle(method, parts, query, body)
        self._send(status, reply)

    do_GET = lambda self: self._route("GET")
    do_POST = lambda self: self._route("POST")
    do_PUT = lambda self: self._route("PUT")
    do_DELETE = lambda self: self._route("DELETE")
    do_PATCH = lambda self: self._route("PATCH")

    # -- the API -------------------------------------------------------------------------------
    def _handle(self, method: str, parts: list[str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        if parts == ["_state"] and method == "GET":
            return 200, {k: v for k, v in STATE.items()}
        if parts == ["_reset"] and method == "POST":
            reset()
            return 200, {}
        if parts == ["_fail"] and method == "POST":
            STATE["fail"] = dict(body or {})
            return 200, {}
        if parts[:1] != ["api"] or len(parts) < 3:
            return 404, {"detail": f"no route {'/'.join(parts)}"}
        version, rest = parts[1], parts[2:]
        if version == "v1" and rest == ["client-spec"] and method == "GET":
            return 200, {"version": VERSION}
        if version == "v1" and rest == ["projects"] and method == "POST":
            name = (body or {}).get("metadata", {}).get("name")
            if not name:
                return 400, {"detail": "a project needs a name"}
            if name in STATE["projects"]:
                return 409, {"detail": f"project {name} exists"}
            project = {**body, "status": {"state": "online"}}
            STATE["projects"][name] = project
            return 201, project
        if rest[:1] != ["projects"] or len(rest) < 2:
            return 404, {"detail": f"no route {'/'.join(parts)}"}
        project = rest[1]
        if version == "v1" and len(rest) == 2 and method == "GET":
            if project not in STATE["projects"]:
                return 404, {"detail": f"project {project} not found"}
            return 200, STATE["projects"][project]
        if project not in STATE["projects"]:
            return 404, {"detail": f"project {project} not found"}
        if version == "v1" and len(rest) == 4 and rest[2] == "runs":
            key = f"{project}/{rest[3]}/{query.get('iter', '0')}"
            if method == "POST":
                STATE["runs"][key] = body
                return 200, {}
            if method == "DELETE":
                if STATE["runs"].pop(key, None) is None:
                    return 404, {"detail": f"run {key} not found"}
                return 200, {}
        if version == "v2" and len(rest) == 4 and rest[2] == "artifacts":
            key = f"{project}/{rest[3]}/{query.get('tree', '')}/{query.get('iter', '0')}"
            if method == "PUT":
                fail = STATE["fail"]
                if "artifacts_after" in fail and STATE["artifact_stores"] >= int(fail["artifacts_after"]):
                    return int(fail.get("status", 500)), {"detail": "the stand-in was told to fail artifact stores"}
                STATE["artifact_stores"] += 1
                stored = {**(body or {})}
                stored.setdefault("metadata", {})["uid"] = f"uid-{len(STATE['artifacts'])}"
                STATE["artifacts"][key] = {"artifact": stored, "tag": query.get("tag")}
                return 200, stored
            if method == "DELETE":
                if STATE["artifacts"].pop(key, None) is None:
                    return 404, {"detail": f"artifact {key} not found"}
                return 204, None
        return 404, {"detail": f"no route {method} {'/'.join(parts)}"}


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
