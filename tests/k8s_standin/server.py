"""A stand-in Kubernetes API server for tests: pods run as local processes.

``StandinK8s`` serves, over plain HTTP on 127.0.0.1, the part of the core/v1 API that the
*unmodified* ``KubernetesPodOperator`` (KPO) of ``apache-airflow-providers-cncf-kubernetes``
uses, through the sync ``kubernetes`` client (``PodManager``) and the async
``kubernetes_asyncio`` client (``KubernetesPodTrigger``, deferrable mode):

* ``GET  /version``, ``GET /api`` -- discovery.
* ``GET  /api/v1[/namespaces/{ns}]/pods?labelSelector=&fieldSelector=`` -- ``find_pod`` (reattach).
* ``POST /api/v1/namespaces/{ns}/pods`` -- ``PodManager.create_pod``; 409 if the name is taken.
* ``GET  /api/v1/namespaces/{ns}/pods/{name}[/status]`` -- ``read_pod`` / ``hook.get_pod``: phase
  ``Pending`` -> ``Running`` -> ``Succeeded``/``Failed`` with ``startTime``, ``conditions`` and
  ``containerStatuses`` (``waiting``/``running``/``terminated`` with ``exitCode``, ``reason``
  ``Completed``/``Error``/``StartError``, ``message``, ``startedAt``/``finishedAt``).
* ``GET  .../pods/{name}/log?container=&follow=&timestamps=&sinceSeconds=&sinceTime=&tailLines=``
  -- stdout+stderr of the container; lines prefixed with RFC3339Nano timestamps when asked;
  ``follow=true`` streams (chunked) until the container terminates. 400 while it waits to start.
* ``PATCH .../pods/{name}`` -- merge / strategic-merge (treated as a merge patch) / JSON patch;
  KPO uses it to add the ``already_checked`` label. Changes to ``spec`` are refused (422).
* ``DELETE .../pods/{name}`` -- ``on_kill`` and ``on_finish_action``: SIGTERM to the process
  group of every running container, SIGKILL after the grace period (body or query
  ``gracePeriodSeconds``, else ``spec.terminationGracePeriodSeconds``, else 30); returns the pod
  with ``deletionTimestamp`` set; the pod disappears once its processes are gone.
* ``GET  /api/v1[/namespaces/{ns}]/events?fieldSelector=involvedObject.name=...`` --
  ``read_pod_events``/``watch_pod_events`` (also ``watch=true``, used by the async hook).

Every container is a local subprocess (``command`` + ``args`` as argv, ``$(VAR)`` expanded),
in its own session/process group, cwd a per-pod temp dir, with the container ``env``
(``value``; ``valueFrom`` ``secretKeyRef``/``configMapKeyRef``/``fieldRef``) and ``envFrom``
(``secretRef``/``configMapRef``). Secrets and config maps are pre-loaded with
:meth:`StandinK8s.add_secret` / :meth:`StandinK8s.add_configmap`; a missing one keeps the
container waiting with ``CreateContainerConfigError`` as a kubelet would. Init containers run
one after another before the containers. ``python``/``python3`` resolve to ``sys.executable``
(see ``executables``). Absolute ``workingDir`` and ``terminationMessagePath`` are re-rooted at
the pod's temp dir. A container without ``command`` runs its image's entrypoint (``entrypoints``). Not served:
exec/attach (so no ``do_xcom_push``), volumes (accepted, not mounted), pod watches,
restarts (``restartPolicy`` behaves as ``Never``), images (recorded, never pulled).

``GET .../secrets/{name}`` answers for the secrets added with :meth:`StandinK8s.add_secret` (values
base64, as the API gives them), 404 otherwise: what a launcher asks before mounting one.

Deployments and Services (what the serve action's launcher uses, through ``KubernetesHook``'s clients):

* ``GET /apis`` -- discovery of ``apps/v1``.
* ``POST|GET|DELETE /apis/apps/v1/namespaces/{ns}/deployments[/{name}]`` (list with
  ``labelSelector``): validated as the API server does (name, ``selector`` matching the template's
  labels, ``replicas`` >= 0, ``restartPolicy: Always``); one pod per replica, named
  ``{deployment}-{hash}-{suffix}``, with the template's labels. Their status is computed on read:
  ``replicas``, ``readyReplicas``/``availableReplicas`` (pods whose containers are ready),
  ``unavailableReplicas``. Deleting one deletes its pods (background propagation).
* ``POST|GET|DELETE /api/v1/namespaces/{ns}/services[/{name}]``: a DNS-1035 name, a known ``type``,
  ports (``targetPort`` defaults to ``port``; ``nodePort`` from 30000 for NodePort/LoadBalancer).
* Ports: every ``containerPort`` of a Deployment's pod is published on a free 127.0.0.1 port
  (``StandinPod.port_map``); all pods share the host's network, so the process must be told that
  port: a container that declares the env var ``port_env`` (default ``DIGITALHUB_SERVICE_PORT``) with
  the containerPort gets the published port there instead.
* Readiness: an ``httpGet`` ``readinessProbe`` is polled every 0.1 s on the published port; the
  container is ``ready`` (and the pod ``Ready``) while it answers 2xx/3xx. A container without a
  probe is ready while it runs (as before).
* The cluster's network: ``proxy_url`` is an HTTP proxy that forwards a request for
  ``http://{service}.{namespace}[.svc[.cluster.local]]:{port}/...`` to a ready pod of that Service
  (in turn), on the published port of its ``targetPort`` (a number or a port name); 503 without a
  ready pod, 404 for an unknown Service. Containers are not restarted and a Deployment does not
  replace its pods: a pod whose process exits ends ``Failed``/``Succeeded`` and stays so.

For assertions: ``pods`` (live pods by ``(namespace, name)``), ``history`` (every pod ever
created, each with ``manifest`` as POSTed, the live ``obj``, ``phase``, ``exit_code``,
``logs()`` and its processes), ``created_count``, ``requests`` (``"METHOD /path?query"`` in
order), ``events``, ``deployments`` and ``services`` (live, by ``(namespace, name)``),
``deployment_history``/``service_history`` (as POSTed), a pod's ``owner`` (its Deployment);
``wait_for(predicate)`` polls under the server lock.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]
_NS = r"/api/v1/namespaces/(?P<ns>[^/]+)"
_LABEL_REQ = re.compile(
    r"(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|!=|=)\s*(?P<value>[A-Za-z0-9_.-]*)|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?"
)
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def rfc3339(ns: int | None = None, *, nano: bool = False) -> str:
    """Format a ``time.time_ns()`` value as Go's RFC3339 (or RFC3339Nano: trailing zeros trimmed)."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if nano and frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def _flag(query: Mapping[str, str], key: str) -> bool:
    """A boolean query parameter, parsed like Go's ``strconv.ParseBool`` (the client sends ``True``)."""
    return query.get(key, "") in ("1", "t", "T", "true", "TRUE", "True")


def _split_selector(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in [*parts, cur] if p.strip()]


def match_labels(labels: Mapping[str, str], selector: str) -> bool:
    """Evaluate a label selector (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``)."""
    for req in _split_selector(selector):
        m = _LABEL_REQ.fullmatch(req)
        if not m:
            raise ValueError(f"unable to parse requirement: {req!r}")
        key, has = m["key"], m["key"] in labels
        value = labels.get(key)
        if m["op"] in ("=", "=="):
            ok = value == m["value"]
        elif m["op"] == "!=":
            ok = value != m["value"]
        elif m["setop"]:
            ok = has and value in {v.strip() for v in m["values"].split(",")}
            ok = ok if m["setop"] == "in" else not ok
        else:
            ok = not has if m["neg"] else has
        if not ok:
            return False
    return True


def match_fields(obj: JSON, selector: str) -> bool:
    """Evaluate a field selector such as ``involvedObject.name=x,status.phase!=Failed``."""
    for req in _split_selector(selector):
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|!=|=)\s*(.*)", req)
        if not m:
            raise ValueError(f"invalid field selector: {req!r}")
        cur: Any = obj
        for part in m[1].split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if (str(cur if cur is not None else "") == m[3]) != (m[2] == "!="):
            continue
        return False
    return True


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _json_patch(doc: JSON, ops: list[JSON]) -> JSON:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        cur: Any = doc
        for p in parents:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        if op["op"] == "remove":
            del cur[int(last) if isinstance(cur, list) else last]
        elif op["op"] in ("add", "replace"):
            if isinstance(cur, list):
                idx = len(cur) if last == "-" else int(last)
                cur[idx : idx + (op["op"] == "replace")] = [op["value"]]
            else:
                cur[last] = op["value"]
        else:
            raise ValueError(f"unsupported JSON patch op {op['op']!r}")
    return doc


class ApiError(Exception):
    """An API failure, rendered as a ``kind: Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> JSON:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
            "details": self.details or {},
        }


@dataclass
class ContainerRun:
    """Runtime record of one container: its process, log lines and current state."""

    spec: JSON
    init: bool
    lines: list[tuple[int, bytes]] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    state: JSON = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    container_id: str = ""
    reap_lock: threading.Lock = field(default_factory=threading.Lock)  # see StandinK8s._killpg
    probe_ready: bool = False  # what its readinessProbe last answered (a container without one: running)

    @property
    def ready(self) -> bool:
        if "running" not in self.state or self.init:
            return False
        return self.probe_ready if self.spec.get("readinessProbe") else True

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def done(self) -> bool:
        return "terminated" in self.state

    @property
    def exit_code(self) -> int | None:
        return self.state.get("terminated", {}).get("exitCode")

    def log_text(self) -> str:
        return b"".join(line for _, line in self.lines).decode("utf-8", "replace")

    def status(self) -> JSON:
        image = str(self.spec.get("image", ""))
        return {
            "name": self.name,
            "image": image,
            "containerID": self.container_id,
            "imageID": f"standin://{image}" if self.container_id else "",
            "ready": self.ready,
            "started": "running" in self.state,
            "restartCount": 0,
            "state": copy.deepcopy(self.state),
            "lastState": {},
        }


@dataclass
class StandinPod:
    """A pod held by the server. ``manifest`` is the create body exactly as received."""

    manifest: JSON
    obj: JSON
    workdir: Path
    containers: list[ContainerRun]
    deleting: bool = False
    gone: bool = False
    port_map: dict[int, int] = field(default_factory=dict)  # containerPort -> local 127.0.0.1 port
    owner: tuple[str, str] | None = None  # the (namespace, name) of its Deployment

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def phase(self) -> str:
        return str(self.obj["status"]["phase"])

    def container(self, name: str | None = None) -> ContainerRun:
        """The named container, or the first (non-init) one -- KPO's ``base``."""
        mains = [c for c in self.containers if not c.init]
        return next(c for c in self.containers if c.name == name) if name else mains[0]

    @property
    def exit_code(self) -> int | None:
        return self.container().exit_code

    def logs(self, container: str | None = None) -> str:
        return self.container(container).log_text()

    def running_procs(self) -> list[subprocess.Popen[bytes]]:
        """Processes not yet reaped (only the container's own waiter thread reaps)."""
        return [c.proc for c in self.containers if c.proc is not None and c.proc.returncode is None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (requests are recorded in ``StandinK8s.requests``)."""

    def _dispatch(self) -> None:
        k8s = self.server.standin
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with k8s.cond:
            k8s.requests.append(f"{self.command} {self.path}")
        try:
            if k8s.token and self.headers.get("Authorization") != f"Bearer {k8s.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            for method, pattern, handler in _ROUTES:
                m = re.fullmatch(pattern, url.path)
                if m and method == self.command:
                    body = json.loads(raw) if raw else None
                    result = getattr(self, handler)(k8s, query, body, **m.groupdict())
                    if result is not None:
                        self._send_json(200 if self.command != "POST" else 201, result)
                    return
            if any(re.fullmatch(pattern, url.path) for _, pattern, _ in _ROUTES):
                raise ApiError(405, "MethodNotAllowed", f"{self.command} is not supported on {url.path}")
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        except ApiError as e:
            self._send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except (ValueError, KeyError, TypeError) as e:
            self._send_json(400, ApiError(400, "BadRequest", f"{type(e).__name__}: {e}").status())

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch

    def _send_json(self, code: int, payload: Any) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json")

    def _send(self, code: int, data: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, ctype: str, chunks: Callable[[Callable[[bytes], None]], None]) -> None:
        """Send a chunked response; ``chunks`` calls its argument once per chunk."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        try:
            chunks(write)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def client_gone(self) -> bool:
        """True once the client closed its end of the connection (checked without blocking)."""
        try:
            if select.select([self.connection], [], [], 0)[0]:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

    # ---- routes -------------------------------------------------------------------------------
    def version(self, k8s: StandinK8s, q: JSON, body: Any) -> JSON:
        return {
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-standin",
            "gitCommit": "standin",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def api_versions(self, k8s: StandinK8s, q: JSON, body: Any) -> JSON:
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}

    def list_pods(self, k8s: StandinK8s, q: JSON, body: Any, ns: str | None = None) -> JSON:
        if _flag(q, "watch"):
            raise ApiError(405, "MethodNotAllowed", "the stand-in does not serve pod watches")
        with k8s.cond:
            items = [
                copy.deepcopy(p.obj)
                for p in k8s.pods.values()
                if ns in (None, p.namespace)
                and match_labels(p.obj["metadata"].get("labels") or {}, q.get("labelSelector", ""))
                and match_fields(p.obj, q.get("fieldSelector", ""))
            ]
            return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(k8s.rv)}, "items": items}

    def create_pod(self, k8s: StandinK8s, q: JSON, body: Any, ns: str) -> JSON:
        return k8s.create_pod(ns, body)

    def read_pod(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        with k8s.cond:
            return copy.deepcopy(k8s.get_pod(ns, name).obj)

    def patch_pod(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        return k8s.patch_pod(ns, name, body, ctype)

    def delete_pod(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        grace = (body or {}).get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
        return k8s.delete_pod(ns, name, None if grace in (None, "") else int(grace))

    def read_log(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> None:
        with k8s.cond:
            pod = k8s.get_pod(ns, name)
            names = [c.name for c in pod.containers]
            cname = q.get("container") or (names[0] if len(pod.obj["spec"]["containers"]) == 1 else None)
            if cname is None:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]",
                )
            if cname not in names:
                raise ApiError(400, "BadRequest", f"container {cname} is not valid for pod {name}")
            run = pod.container(cname)
            if _flag(q, "previous"):
                raise ApiError(400, "BadRequest", f'previous terminated container "{cname}" in pod "{name}" not found')
            if "waiting" in run.state and run.proc is None:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'container "{cname}" in pod "{name}" is waiting to start: {run.state["waiting"].get("reason")}',
                )
        since = None
        if q.get("sinceSeconds"):
            since = time.time_ns() - int(q["sinceSeconds"]) * 1_000_000_000
        elif q.get("sinceTime"):
            when = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", q["sinceTime"]).replace("Z", "+00:00"))
            since = int(when.timestamp() * 1e9)
        stamps = _flag(q, "timestamps")

        def render(lines: list[tuple[int, bytes]]) -> bytes:
            sel = [(ts, line) for ts, line in lines if since is None or ts >= since]
            if q.get("tailLines"):
                sel = sel[len(sel) - int(q["tailLines"]) :] if int(q["tailLines"]) else []
            prefix = (lambda ts: rfc3339(ts, nano=True).encode() + b" ") if stamps else (lambda ts: b"")
            return b"".join(prefix(ts) + line for ts, line in sel)

        if not _flag(q, "follow"):
            with k8s.cond:
                data = render(run.lines)
            self._send(200, data[: int(q["limitBytes"])] if q.get("limitBytes") else data, "text/plain")
            return

        def follow(write: Callable[[bytes], None]) -> None:
            sent = 0
            while not k8s.stopping.is_set():
                with k8s.cond:
                    new, finished = run.lines[sent:], run.done or pod.gone
                    sent += len(new)
                    if not new and not finished:
                        k8s.cond.wait(0.2)
                write(render(new))
                if finished and not new:
                    return
                if not new and self.client_gone():
                    return

        self._stream("text/plain", follow)

    def list_events(self, k8s: StandinK8s, q: JSON, body: Any, ns: str | None = None) -> JSON | None:
        fields = q.get("fieldSelector", "")

        def matching(after: int) -> list[JSON]:
            return [
                copy.deepcopy(e)
                for e in k8s.events
                if int(e["metadata"]["resourceVersion"]) > after
                and ns in (None, e["metadata"]["namespace"])
                and match_fields(e, fields)
            ]

        if not _flag(q, "watch"):
            with k8s.cond:
                return {
                    "kind": "EventList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(k8s.rv)},
                    "items": matching(0),
                }
        deadline = time.monotonic() + min(int(q.get("timeoutSeconds") or 1800), 1800)

        def watch(write: Callable[[bytes], None]) -> None:
            last = int(q.get("resourceVersion") or 0)
            while time.monotonic() < deadline and not k8s.stopping.is_set() and not self.client_gone():
                with k8s.cond:
                    new = matching(last)
                    if not new:
                        k8s.cond.wait(0.2)
                for event in new:
                    last = int(event["metadata"]["resourceVersion"])
                    write(json.dumps({"type": "ADDED", "object": event}).encode() + b"\n")

        self._stream("application/json", watch)
        return None

    # ---- apps/v1 deployments, core/v1 services ----------------------------------------------------
    def api_groups(self, k8s: StandinK8s, q: JSON, body: Any) -> JSON:
        version = {"groupVersion": "apps/v1", "version": "v1"}
        group = {"name": "apps", "versions": [version], "preferredVersion": version}
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}

    def list_deployments(self, k8s: StandinK8s, q: JSON, body: Any, ns: str | None = None) -> JSON:
        with k8s.cond:
            items = [
                k8s.deployment_view(d)
                for d in k8s.deployments.values()
                if ns in (None, d["metadata"]["namespace"])
                and match_labels(d["metadata"].get("labels") or {}, q.get("labelSelector", ""))
            ]
            meta = {"resourceVersion": str(k8s.rv)}
            return {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": meta, "items": items}

    def create_deployment(self, k8s: StandinK8s, q: JSON, body: Any, ns: str) -> JSON:
        return k8s.create_deployment(ns, body)

    def read_deployment(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        with k8s.cond:
            return k8s.deployment_view(k8s.get_object(k8s.deployments, "deployments", ns, name))

    def delete_deployment(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        grace = (body or {}).get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
        return k8s.delete_deployment(ns, name, None if grace in (None, "") else int(grace))

    def list_services(self, k8s: StandinK8s, q: JSON, body: Any, ns: str | None = None) -> JSON:
        with k8s.cond:
            items = [
                copy.deepcopy(v)
                for v in k8s.services.values()
                if ns in (None, v["metadata"]["namespace"])
                and match_labels(v["metadata"].get("labels") or {}, q.get("labelSelector", ""))
            ]
            return {"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": str(k8s.rv)},
                    "items": items}  # fmt: skip

    def create_service(self, k8s: StandinK8s, q: JSON, body: Any, ns: str) -> JSON:
        return k8s.create_service(ns, body)

    def read_secret(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        """A secret added with :meth:`StandinK8s.add_secret`, its values base64 as the API gives them."""
        with k8s.cond:
            data = k8s.secrets.get((ns, name))
        if data is None:
            raise ApiError(404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"})
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                "type": "Opaque", "data": encoded}  # fmt: skip

    def read_service(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        with k8s.cond:
            return copy.deepcopy(k8s.get_object(k8s.services, "services", ns, name))

    def delete_service(self, k8s: StandinK8s, q: JSON, body: Any, ns: str, name: str) -> JSON:
        return k8s.delete_service(ns, name)


_APPS = r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)"
_ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/apis/?", "api_groups"),
    ("GET", r"/apis/apps/v1/deployments", "list_deployments"),
    ("GET", _APPS + r"/deployments", "list_deployments"),
    ("POST", _APPS + r"/deployments", "create_deployment"),
    ("GET", _APPS + r"/deployments/(?P<name>[^/]+)(?:/status)?", "read_deployment"),
    ("DELETE", _APPS + r"/deployments/(?P<name>[^/]+)", "delete_deployment"),
    ("GET", r"/api/v1/services", "list_services"),
    ("GET", _NS + r"/services", "list_services"),
    ("POST", _NS + r"/services", "create_service"),
    ("GET", _NS + r"/services/(?P<name>[^/]+)(?:/status)?", "read_service"),
    ("DELETE", _NS + r"/services/(?P<name>[^/]+)", "delete_service"),
    ("GET", _NS + r"/secrets/(?P<name>[^/]+)", "read_secret"),
    ("GET", r"/version/?", "version"),
    ("GET", r"/api/?", "api_versions"),
    ("GET", r"/api/v1/pods", "list_pods"),
    ("GET", _NS + r"/pods", "list_pods"),
    ("POST", _NS + r"/pods", "create_pod"),
    ("GET", _NS + r"/pods/(?P<name>[^/]+)(?:/status)?", "read_pod"),
    ("PATCH", _NS + r"/pods/(?P<name>[^/]+)", "patch_pod"),
    ("DELETE", _NS + r"/pods/(?P<name>[^/]+)", "delete_pod"),
    ("GET", _NS + r"/pods/(?P<name>[^/]+)/log", "read_log"),
    ("GET", r"/api/v1/events", "list_events"),
    ("GET", _NS + r"/events", "list_events"),
]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandinK8s


class StandinK8s:
    """The stand-in API server; use as a context manager (see the module docstring).

    :param startup_delay: seconds a new pod stays ``Pending`` (half unscheduled, half
        ``ContainerCreating``) before its containers start.
    :param token: bearer token required from clients (written into the kubeconfig); ``None``
        accepts anonymous requests.
    :param executables: argv[0] names mapped to local programs (default: ``python`` and
        ``python3`` -> ``sys.executable``), shimmed at the front of the containers' ``PATH``.
    :param base_env: variables every container gets before its own ``env``.
    :param entrypoints: image names (without tag) mapped to the argv a container of that image runs
        when it gives no ``command`` (its image's entrypoint; the default maps Kaniko's executor image
        to ``tests/k8s_standin/kaniko_executor.py``).
    """

    def __init__(
        self,
        *,
        startup_delay: float = 0.3,
        token: str | None = "standin-token",
        executables: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        port_env: str = "DIGITALHUB_SERVICE_PORT",
        entrypoints: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.startup_delay, self.token = startup_delay, token
        kaniko = [sys.executable, str(Path(__file__).with_name("kaniko_executor.py"))]
        self.entrypoints = dict(entrypoints or {"gcr.io/kaniko-project/executor": kaniko})
        self.port_env = port_env
        self.executables = dict(executables or {"python": sys.executable, "python3": sys.executable})
        self.base_env = dict(base_env or {})
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.rv = 1
        self.pods: dict[tuple[str, str], StandinPod] = {}  # live pods, by (namespace, name)
        self.history: list[StandinPod] = []  # every pod ever created, deleted ones included
        self.events: list[JSON] = []
        self.requests: list[str] = []  # "METHOD /path?query" of every request, in order
        self.created_count = 0
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.configmaps: dict[tuple[str, str], dict[str, str]] = {}
        self.deployments: dict[tuple[str, str], JSON] = {}  # live Deployments, by (namespace, name)
        self.services: dict[tuple[str, str], JSON] = {}  # live Services, by (namespace, name)
        self.deployment_history: list[JSON] = []  # every Deployment created, as POSTed
        self.service_history: list[JSON] = []  # every Service created, as POSTed
        self._next_endpoint = 0
        self._httpd: _HTTPServer | None = None
        self._proxy: _ProxyServer | None = None
        self._root = Path(tempfile.mkdtemp(prefix="k8s-standin-"))

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> StandinK8s:
        bindir = self._root / "bin"
        bindir.mkdir()
        for name, target in self.executables.items():
            shim = bindir / name
            shim.write_text(f'#!/bin/sh\nexec {shlex.quote(target)} "$@"\n')
            shim.chmod(0o755)
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.standin = self
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        self._proxy = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._proxy.standin = self
        threading.Thread(target=self._proxy.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process group ever started, stop serving, remove the temp dirs."""
        self.stopping.set()
        with self.cond:
            runs = [c for p in self.history for c in p.containers if c.proc is not None]
            self.cond.notify_all()
        for run in runs:
            self._killpg(run, signal.SIGKILL)
        for run in runs:
            assert run.proc is not None
            try:
                run.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for server in (self._httpd, self._proxy):
            if server is not None:
                server.shutdown()
                server.server_close()
        shutil.rmtree(self._root, ignore_errors=True)

    @property
    def proxy_url(self) -> str:
        """The cluster's network as an HTTP proxy: ``http://{service}.{namespace}.svc.cluster.local:{port}/``
        (or ``{service}.{namespace}``) reaches a ready pod of the Service, on the local port its
        containerPort is published on. Give it as ``proxies={"http": proxy_url}`` to ``requests``."""
        assert self._proxy is not None, "server not started"
        return f"http://127.0.0.1:{self._proxy.server_address[1]}"

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def kubeconfig_path(self, tmpdir: str | os.PathLike[str], namespace: str = "default") -> str:
        """Write a kubeconfig (no TLS, bearer token) pointing at this server; return its path."""
        user: JSON = {"token": self.token} if self.token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "standin",
            "preferences": {},
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": user}],
            "contexts": [
                {"name": "standin", "context": {"cluster": "standin", "user": "standin", "namespace": namespace}}
            ],
        }
        path = Path(tmpdir) / "kubeconfig-standin.yaml"
        path.write_text(json.dumps(config, indent=2))
        return str(path)

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Hold a secret (plain-text values, like ``stringData``) for ``secretKeyRef``/``secretRef``."""
        with self.cond:
            self.secrets[(namespace, name)] = dict(data)

    def add_configmap(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Hold a config map for ``configMapKeyRef``/``configMapRef``."""
        with self.cond:
            self.configmaps[(namespace, name)] = dict(data)

    def find(self, name: str) -> StandinPod:
        """The most recent pod ever created with this name, deleted or not."""
        with self.cond:
            return next(p for p in reversed(self.history) if p.name == name)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30) -> Any:
        """Poll ``predicate`` (under the server lock) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                value = predicate()
                if value:
                    return value
                if time.monotonic() > deadline:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self.cond.wait(0.05)

    # ---- API operations (called with or without the lock; they take it) ---------------------
    @staticmethod
    def get_object(store: dict[tuple[str, str], JSON], kind: str, ns: str, name: str) -> JSON:
        found = store.get((ns, name))
        if found is None:
            raise ApiError(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})
        return found

    def deployment_pods(self, ns: str, name: str) -> list[StandinPod]:
        """The live pods of a Deployment (under the lock)."""
        return [p for p in self.pods.values() if p.owner == (ns, name)]

    def deployment_view(self, dep: JSON) -> JSON:
        """A Deployment with its status as its pods make it (``readyReplicas`` once a probe answers)."""
        obj = copy.deepcopy(dep)
        md = dep["metadata"]
        pods = [p for p in self.deployment_pods(md["namespace"], md["name"]) if not p.deleting]
        ready = sum(1 for p in pods if p.containers and all(c.ready for c in p.containers if not c.init))
        status: JSON = {"observedGeneration": 1, "replicas": len(pods), "updatedReplicas": len(pods)}
        if ready:
            status.update(readyReplicas=ready, availableReplicas=ready)
        if len(pods) - ready:
            status["unavailableReplicas"] = len(pods) - ready
        available = "True" if ready >= int(obj["spec"].get("replicas", 1)) else "False"
        status["conditions"] = [{"type": "Available", "status": available, "reason": "MinimumReplicas"}]
        obj["status"] = status
        return obj

    def create_deployment(self, ns: str, body: JSON) -> JSON:
        """Validated as the API server would (name, selector, template, ``restartPolicy: Always``);
        one pod per replica, each container port published on a free local port."""
        obj = copy.deepcopy(body)
        md, spec = obj.setdefault("metadata", {}), obj.setdefault("spec", {})
        name = md.get("name") or ""
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        replicas = spec.setdefault("replicas", 1)
        errors = []
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
            errors.append(f'metadata.name: Invalid value: "{name}"')
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            errors.append("spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`")
        if not isinstance(replicas, int) or replicas < 0:
            errors.append(f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0")
        pod_spec = template.get("spec") or {}
        if not pod_spec.get("containers"):
            errors.append("spec.template.spec.containers: Required value")
        if pod_spec.get("restartPolicy", "Always") != "Always":
            errors.append(f'spec.template.spec.restartPolicy: Unsupported value: "{pod_spec["restartPolicy"]}"')
        if errors:
            raise ApiError(422, "Invalid", f'Deployment.apps "{name}" is invalid: {", ".join(errors)}')
        with self.cond:
            if (ns, name) in self.deployments:
                raise ApiError(409, "AlreadyExists", f'deployments.apps "{name}" already exists')
            md.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=rfc3339(), generation=1)
            obj.update(apiVersion="apps/v1", kind="Deployment")
            self.deployments[(ns, name)] = obj
            self.deployment_history.append(copy.deepcopy(body))
            self._bump(obj)
            template_hash = uuid.uuid4().hex[:10]
            owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": md["uid"], "controller": True}
            for _ in range(replicas):
                pod = {
                    "metadata": {
                        "name": f"{name}-{template_hash}-{uuid.uuid4().hex[:5]}",
                        "labels": {**labels, "pod-template-hash": template_hash},
                        "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                        "ownerReferences": [owner],
                    },
                    "spec": copy.deepcopy(pod_spec),
                }
                ports = [p["containerPort"] for c in pod_spec["containers"] for p in c.get("ports") or []]
                self.create_pod(ns, pod, port_map={port: _free_port() for port in ports}, owner=(ns, name))
            return self.deployment_view(obj)

    def delete_deployment(self, ns: str, name: str, grace: int | None = None) -> JSON:
        """Gone at once; its pods deleted as the garbage collector would (background propagation)."""
        with self.cond:
            dep = self.get_object(self.deployments, "deployments", ns, name)
            del self.deployments[(ns, name)]
            self._bump()
            for pod in self.deployment_pods(ns, name):
                self.delete_pod(ns, pod.name, grace)
            details = {"name": name, "group": "apps", "kind": "deployments", "uid": dep["metadata"]["uid"]}
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def create_service(self, ns: str, body: JSON) -> JSON:
        obj = copy.deepcopy(body)
        md, spec = obj.setdefault("metadata", {}), obj.setdefault("spec", {})
        name = md.get("name") or ""
        kind = spec.setdefault("type", "ClusterIP")
        errors = []
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            errors.append(f'metadata.name: Invalid value: "{name}": a DNS-1035 label')
        if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            errors.append(f'spec.type: Unsupported value: "{kind}"')
        if not spec.get("ports"):
            errors.append("spec.ports: Required value")
        if errors:
            raise ApiError(422, "Invalid", f'Service "{name}" is invalid: {", ".join(errors)}')
        with self.cond:
            if (ns, name) in self.services:
                raise ApiError(409, "AlreadyExists", f'services "{name}" already exists')
            md.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=rfc3339())
            obj.update(apiVersion="v1", kind="Service", status={"loadBalancer": {}})
            spec["clusterIP"] = f"10.96.{len(self.service_history) // 250}.{len(self.service_history) % 250 + 1}"
            for i, port in enumerate(spec["ports"]):
                port.setdefault("targetPort", port["port"])
                if kind in ("NodePort", "LoadBalancer"):
                    port.setdefault("nodePort", 30000 + (len(self.service_history) * 8 + i) % 2768)
            self.services[(ns, name)] = obj
            self.service_history.append(copy.deepcopy(body))
            self._bump(obj)
            return copy.deepcopy(obj)

    def delete_service(self, ns: str, name: str) -> JSON:
        with self.cond:
            svc = self.get_object(self.services, "services", ns, name)
            del self.services[(ns, name)]
            self._bump()
            return copy.deepcopy(svc)

    def endpoint(self, host: str, port: int) -> tuple[str, int]:
        """The local address that ``host:port`` (a Service's in-cluster name) reaches: a ready pod of
        the Service (taken in turn), on the local port its target containerPort is published on."""
        parts = host.split(".")
        name, ns = parts[0], parts[1] if len(parts) > 1 else "default"
        if len(parts) > 2 and parts[2:] not in (["svc"], ["svc", "cluster", "local"]):
            raise ApiError(502, "BadGateway", f"{host}: not a Service's name in this cluster")
        with self.cond:
            svc = self.get_object(self.services, "services", ns, name)
            entry = next((p for p in svc["spec"]["ports"] if int(p["port"]) == port), None)
            if entry is None:
                raise ApiError(502, "BadGateway", f"service {ns}/{name} has no port {port}")
            selector = svc["spec"].get("selector") or {}
            ready = [
                p for p in self.pods.values()
                if p.namespace == ns and not p.deleting and selector
                and all((p.obj["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
                and all(c.ready for c in p.containers if not c.init)
            ]  # fmt: skip
            if not ready:
                raise ApiError(503, "ServiceUnavailable", f"service {ns}/{name} has no ready endpoint")
            pod = ready[self._next_endpoint % len(ready)]
            self._next_endpoint += 1
            return "127.0.0.1", _published(pod, entry["targetPort"])

    def get_pod(self, ns: str, name: str) -> StandinPod:
        pod = self.pods.get((ns, name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        return pod

    def _bump(self, obj: JSON | None = None) -> None:
        self.rv += 1
        if obj is not None:
            obj["metadata"]["resourceVersion"] = str(self.rv)
        self.cond.notify_all()

    def create_pod(
        self, ns: str, body: JSON, port_map: dict[int, int] | None = None, owner: tuple[str, str] | None = None
    ) -> JSON:
        obj = copy.deepcopy(body)
        md, spec = obj.setdefault("metadata", {}), obj.setdefault("spec", {})
        if md.get("namespace", ns) != ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
        name = md.get("name") or ""
        valid_name = re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name)
        errors = [] if valid_name else [f'metadata.name: Invalid value: "{name}"']
        if not spec.get("containers"):
            errors.append("spec.containers: Required value")
        for i, c in enumerate((spec.get("initContainers") or []) + (spec.get("containers") or [])):
            errors += [f"spec.containers[{i}].{k}: Required value" for k in ("name", "image") if not c.get(k)]
        if errors:
            raise ApiError(422, "Invalid", f'Pod "{name}" is invalid: {", ".join(errors)}')
        for c in (spec.get("initContainers") or []) + spec["containers"]:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault(
                "imagePullPolicy",
                "Always"
                if ":" not in c["image"].rsplit("/", 1)[-1] or c["image"].endswith(":latest")
                else "IfNotPresent",
            )
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        with self.cond:
            if (ns, name) in self.pods:
                raise ApiError(409, "AlreadyExists", f'pods "{name}" already exists')
            md.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=rfc3339())
            obj.update(apiVersion="v1", kind="Pod", status={"phase": "Pending", "qosClass": "BestEffort"})
            runs = [ContainerRun(c, True) for c in spec.get("initContainers") or []]
            runs += [ContainerRun(c, False) for c in spec["containers"]]
            workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._root))
            pod = StandinPod(copy.deepcopy(body), obj, workdir, runs, port_map=dict(port_map or {}), owner=owner)
            self.pods[(ns, name)] = pod
            self.history.append(pod)
            self.created_count += 1
            self._bump(obj)
            threading.Thread(target=self._lifecycle, args=(pod,), name=f"pod-{name}", daemon=True).start()
            return copy.deepcopy(obj)

    def patch_pod(self, ns: str, name: str, patch: Any, ctype: str) -> JSON:
        with self.cond:
            pod = self.get_pod(ns, name)
            if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                new = _merge_patch(pod.obj, patch)
            elif ctype == "application/json-patch+json":
                new = _json_patch(pod.obj, patch)
            else:
                raise ApiError(
                    415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}"
                )
            if new.get("spec") != pod.obj["spec"]:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Pod "{name}" is invalid: spec: Forbidden: pod updates '
                    "may not change fields other than metadata (stand-in)",
                )
            for key in ("uid", "name", "namespace", "creationTimestamp", "deletionTimestamp"):
                if key in pod.obj["metadata"]:
                    new["metadata"][key] = pod.obj["metadata"][key]
            new["status"] = pod.obj["status"]
            pod.obj = new
            self._bump(new)
            return copy.deepcopy(new)

    def delete_pod(self, ns: str, name: str, grace: int | None) -> JSON:
        with self.cond:
            pod = self.get_pod(ns, name)
            if grace is None:
                grace = int(pod.obj["spec"].get("terminationGracePeriodSeconds", 30))
            if not pod.deleting:
                pod.deleting = True
                pod.obj["metadata"].update(
                    deletionTimestamp=rfc3339(time.time_ns() + grace * 10**9), deletionGracePeriodSeconds=grace
                )
                self._bump(pod.obj)
                for run in pod.containers:
                    if run.proc is not None and run.proc.returncode is None:
                        self._event(pod, "Killing", f"Stopping container {run.name}", run.name)
                        self._killpg(run, signal.SIGTERM if grace > 0 else signal.SIGKILL)
                threading.Thread(target=self._finish_delete, args=(pod, grace), daemon=True).start()
            return copy.deepcopy(pod.obj)

    # ---- pod runtime ------------------------------------------------------------------------
    def _finish_delete(self, pod: StandinPod, grace: int) -> None:
        deadline = time.monotonic() + grace
        while pod.running_procs() and time.monotonic() < deadline and not self.stopping.is_set():
            time.sleep(0.05)
        for run in pod.containers:
            self._killpg(run, signal.SIGKILL)
        with self.cond:  # let the waiters record the exit before the pod vanishes
            self.cond.wait_for(lambda: all(c.done or c.proc is None for c in pod.containers), timeout=10)
            pod.gone = True
            self.pods.pop((pod.namespace, pod.name), None)
            self._bump()

    @staticmethod
    def _killpg(run: ContainerRun, sig: signal.Signals, *, locked: bool = False) -> None:
        """Signal the container's process group, only while its leader is unreaped.

        The leader's pid is the group id; until the leader is reaped that number cannot be
        reused, so this never signals a stranger's process group.
        """
        if run.proc is None:
            return
        with contextlib.nullcontext() if locked else run.reap_lock:
            if run.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.proc.pid, sig)

    def _event(
        self, pod: StandinPod, reason: str, message: str, container: str | None = None, type_: str = "Normal"
    ) -> None:
        now = rfc3339()
        self.rv += 1
        involved = {
            "kind": "Pod",
            "namespace": pod.namespace,
            "name": pod.name,
            "apiVersion": "v1",
            "uid": pod.obj["metadata"]["uid"],
        }
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        self.events.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "type": type_,
                "reason": reason,
                "message": message,
                "metadata": {
                    "name": f"{pod.name}.{uuid.uuid4().hex[:16]}",
                    "namespace": pod.namespace,
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": str(self.rv),
                    "creationTimestamp": now,
                },
                "involvedObject": involved,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "kubelet", "host": "standin-node"},
                "reportingComponent": "kubelet",
                "reportingInstance": "standin-node",
            }
        )
        self.cond.notify_all()

    def _set_status(self, pod: StandinPod, **changes: Any) -> None:
        st = pod.obj["status"]
        st.update(changes)
        init = [c.status() for c in pod.containers if c.init]
        if init:
            st["initContainerStatuses"] = init
        if "startTime" in st:
            st["containerStatuses"] = [c.status() for c in pod.containers if not c.init]
        mains = [c for c in pod.containers if not c.init]
        ready = str(all(c.ready for c in mains)).title()
        if "startTime" in st:
            st["conditions"] = [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": str(all(c.done for c in pod.containers if c.init)).title()},
                {"type": "ContainersReady", "status": ready},
                {"type": "Ready", "status": ready},
            ]
        self._bump(pod.obj)

    def _lifecycle(self, pod: StandinPod) -> None:
        self.stopping.wait(self.startup_delay / 2)
        with self.cond:
            if pod.deleting:
                return
            pod.obj["spec"]["nodeName"] = "standin-node"
            self._event(pod, "Scheduled", f"Successfully assigned {pod.namespace}/{pod.name} to standin-node")
            for c in pod.containers:
                if not c.init and any(i.init for i in pod.containers):
                    c.state = {"waiting": {"reason": "PodInitializing"}}
            self._set_status(
                pod, startTime=rfc3339(), hostIP="127.0.0.1", podIP="127.0.0.1", podIPs=[{"ip": "127.0.0.1"}]
            )
        self.stopping.wait(self.startup_delay / 2)
        for run in [c for c in pod.containers if c.init]:
            if not self._start(pod, run):
                return
            with self.cond:
                self.cond.wait_for(lambda r=run: r.done or self.stopping.is_set())  # type: ignore[misc]
                if run.exit_code != 0:
                    self._set_status(pod, phase="Failed")
                    return
        mains = [c for c in pod.containers if not c.init]
        for run in mains:
            if not self._start(pod, run):
                return
        with self.cond:
            self.cond.wait_for(lambda: all(c.done for c in mains) or self.stopping.is_set())
            failed = any(c.exit_code != 0 for c in mains)
            self._set_status(pod, phase="Failed" if failed else "Succeeded")

    def _start(self, pod: StandinPod, run: ContainerRun) -> bool:
        """Resolve the env (retrying like a kubelet while a secret is missing), then spawn."""
        while True:
            with self.cond:
                if pod.deleting or self.stopping.is_set():
                    return False
                try:
                    env = self._container_env(pod, run.spec)
                    command = run.spec.get("command") or self.entrypoints.get(
                        re.sub(r"(@sha256:[0-9a-f]+|:[^/:]+)$", "", str(run.spec.get("image", ""))), []
                    )
                    argv = [*command, *(run.spec.get("args") or [])]
                    argv = [_expand(a, env) for a in argv]
                    if not argv:
                        raise ApiError(0, "CreateContainerError", "no command specified")
                except ApiError as e:
                    if run.state.get("waiting", {}).get("reason") != e.reason:
                        run.state = {"waiting": {"reason": e.reason, "message": e.message}}
                        self._event(pod, "Failed", f"Error: {e.message}", run.name, "Warning")
                        self._set_status(pod)
                    self.cond.wait(0.5)
                    continue
                pulled = f'Container image "{run.spec["image"]}" already present on machine'
                self._event(pod, "Pulled", pulled, run.name)
                self._event(pod, "Created", f"Created container {run.name}", run.name)
                cwd = pod.workdir / str(run.spec.get("workingDir") or "").lstrip("/")
                cwd.mkdir(parents=True, exist_ok=True)
                try:
                    run.proc = subprocess.Popen(
                        argv,
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except OSError as e:
                    run.state = {
                        "terminated": {
                            "exitCode": 128,
                            "reason": "StartError",
                            "message": f"{e}",
                            "startedAt": rfc3339(),
                            "finishedAt": rfc3339(),
                        }
                    }
                    self._event(pod, "Failed", f"Error: {e}", run.name, "Warning")
                    self._set_status(pod, **({"phase": "Running"} if not run.init else {}))
                    return True
                run.container_id = f"standin://{run.proc.pid}"
                run.state = {"running": {"startedAt": rfc3339()}}
                self._event(pod, "Started", f"Started container {run.name}", run.name)
                self._set_status(pod, **({"phase": "Running"} if not run.init else {}))
                reader = threading.Thread(target=self._read_output, args=(run,), daemon=True)
                reader.start()
                threading.Thread(target=self._await_exit, args=(pod, run, reader), daemon=True).start()
                if (run.spec.get("readinessProbe") or {}).get("httpGet") and not run.init:
                    threading.Thread(target=self._probe, args=(pod, run), daemon=True).start()
                return True

    def _probe(self, pod: StandinPod, run: ContainerRun) -> None:
        """The container's HTTP readiness probe, every 0.1 s while it runs (a stand-in needs no
        ``periodSeconds`` of its own), on the local port its probe's port is published on."""
        import urllib.error
        import urllib.request

        get = run.spec["readinessProbe"]["httpGet"]
        url = f"http://127.0.0.1:{_published(pod, get['port'], run.spec)}{get.get('path') or '/'}"
        while run.proc is not None and run.proc.poll() is None and not pod.deleting and not self.stopping.is_set():
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    ready = 200 <= answer.status < 400
            except (urllib.error.URLError, OSError):
                ready = False
            if ready != run.probe_ready:
                with self.cond:
                    run.probe_ready = ready
                    self._set_status(pod)
            self.stopping.wait(0.1)
        with self.cond:
            run.probe_ready = False
            self._set_status(pod)

    def _read_output(self, run: ContainerRun) -> None:
        assert run.proc is not None and run.proc.stdout is not None
        for line in iter(run.proc.stdout.readline, b""):
            with self.cond:
                run.lines.append((time.time_ns(), line))
                self.cond.notify_all()
        run.proc.stdout.close()

    def _await_exit(self, pod: StandinPod, run: ContainerRun, reader: threading.Thread) -> None:
        assert run.proc is not None
        with contextlib.suppress(ChildProcessError):  # wait for the exit, but leave the zombie
            os.waitid(os.P_PID, run.proc.pid, os.WEXITED | os.WNOWAIT)
        with run.reap_lock:
            self._killpg(run, signal.SIGKILL, locked=True)  # pid 1 of the container exited: the rest goes too
            code = run.proc.wait()
        reader.join(timeout=10)
        exit_code = code if code >= 0 else 128 - code
        term: JSON = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": run.state["running"]["startedAt"],
            "finishedAt": rfc3339(),
            "containerID": run.container_id,
        }
        msg_path = pod.workdir / str(run.spec["terminationMessagePath"]).lstrip("/")
        message = msg_path.read_text(errors="replace")[:4096] if msg_path.is_file() else ""
        if not message and exit_code and run.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = "".join(run.log_text().splitlines(keepends=True)[-80:])[-2048:]
        if message:
            term["message"] = message
        with self.cond:
            run.state = {"terminated": term}
            self._set_status(pod)

    def _container_env(self, pod: StandinPod, spec: JSON) -> dict[str, str]:
        env = {
            "PATH": f"{self._root / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(pod.workdir),
            "HOSTNAME": pod.name,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": self.url.rsplit(":", 1)[1],
            **self.base_env,
        }
        for src in spec.get("envFrom") or []:
            kind = "secret" if "secretRef" in src else "configmap"
            ref = src["secretRef"] if kind == "secret" else src["configMapRef"]
            data = self._lookup(pod, kind, ref["name"], None, ref.get("optional", False))
            env.update({src.get("prefix", "") + k: v for k, v in (data or {}).items()})
        for var in spec.get("env") or []:
            vf = var.get("valueFrom")
            if vf is None:
                env[var["name"]] = _expand(str(var.get("value") or ""), env)
                continue
            if "fieldRef" in vf:
                value: Any = pod.obj
                path = vf["fieldRef"]["fieldPath"]
                m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
                for part in ["metadata", m[1], m[2]] if m else path.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
            else:
                kind = "secret" if "secretKeyRef" in vf else "configmap"
                ref = vf["secretKeyRef"] if kind == "secret" else vf["configMapKeyRef"]
                value = self._lookup(pod, kind, ref["name"], ref["key"], ref.get("optional", False))
            if value is not None:
                env[var["name"]] = str(value)
        declared = env.get(self.port_env, "")
        if declared.isdigit() and int(declared) in pod.port_map:  # the port it is published on, not the declared one
            env[self.port_env] = str(pod.port_map[int(declared)])
        return env

    def _lookup(self, pod: StandinPod, kind: str, name: str, key: str | None, optional: bool) -> Any:
        store = self.secrets if kind == "secret" else self.configmaps
        data = store.get((pod.namespace, name))
        if data is not None and (key is None or key in data):
            return data if key is None else data[key]
        if optional:
            return None
        if data is None:
            raise ApiError(0, "CreateContainerConfigError", f'{kind} "{name}" not found')
        title = "Secret" if kind == "secret" else "ConfigMap"
        message = f"couldn't find key {key} in {title} {pod.namespace}/{name}"
        raise ApiError(0, "CreateContainerConfigError", message)


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, ``$$`` escapes ``$``."""
    return _VAR_REF.sub(lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _published(pod: StandinPod, port: Any, container: JSON | None = None) -> int:
    """The local port a pod's port (a number, or a container port's name) is published on."""
    if isinstance(port, str) and not port.isdigit():
        specs = [container] if container is not None else pod.obj["spec"]["containers"]
        named = [p["containerPort"] for c in specs for p in c.get("ports") or [] if p.get("name") == port]
        if not named:
            raise ApiError(502, "BadGateway", f"pod {pod.name} has no port named {port}")
        port = named[0]
    return pod.port_map.get(int(port), int(port))


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandinK8s


class _ProxyHandler(BaseHTTPRequestHandler):
    """The cluster network: a request for ``http://{service}.{namespace}.svc.cluster.local:{port}/...``
    (absolute form, as to an HTTP proxy) is forwarded to a ready pod of that Service."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet, as the API server."""

    def _forward(self) -> None:
        import http.client

        url = urlsplit(self.path)
        host = url.hostname or (self.headers.get("Host") or "").split(":")[0]
        port = url.port or 80
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        try:
            address = self.server.standin.endpoint(host, port)
        except ApiError as e:
            self._answer(e.code, [("Content-Type", "text/plain")], e.message.encode())
            return
        target = url.path or "/"
        if url.query:
            target += f"?{url.query}"
        hop = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "host", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
        connection = http.client.HTTPConnection(*address, timeout=60)
        try:
            connection.request(self.command, target, body=body, headers={**headers, "Host": f"{host}:{port}"})
            answer = connection.getresponse()
            data = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in hop]
            self._answer(answer.status, kept, data)
        except OSError as e:
            self._answer(502, [("Content-Type", "text/plain")], f"{host}:{port}: {e}".encode())
        finally:
            connection.close()

    def _answer(self, code: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(code)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward
