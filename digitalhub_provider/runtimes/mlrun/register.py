"""Registering an MLRun run with an MLRun API server, after it ran (``DIGITALHUB_MLRUN_API``).

The run itself always executes locally with the in-memory run DB (:mod:`.rundb`), exactly as
without an API server; only then is its record copied to the server. Why not let MLRun talk to
the server while it runs: MLRun's local run with a live HTTP DB is hard to control (it syncs its
configuration from the server, stores the run as ``running`` before the handler starts and each
artifact as the handler logs it, pointing at files in the run's temporary folder, and a failure
half-way leaves all of that behind). Registering after the fact keeps the local run identical,
lets the artifacts point at where the platform stored them (the output entities' paths) and
makes the registration all or nothing: when one call fails, what was already stored is deleted
again (best-effort) and the run ends ERROR.

What is registered, with MLRun's own client (``HTTPRunDB``): the project (created when MLRun
says it does not exist), each artifact (``store_artifact`` under MLRun's key, tree = the run's
uid, ``target_path`` rewritten to the platform's path) and the run record (``store_run``); for
a failed MLRun run only its record. The token (``DIGITALHUB_MLRUN_TOKEN``) goes only into the
``Authorization`` header: never into a message, a log line or a result.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from digitalhub_provider.errors import RunError

PARQUET = "parquet"


class RegistrationError(RunError):
    """The MLRun API server could not be reached or refused part of the registration."""


def public_url(url: str) -> str:
    """``url`` without user name, password, query or fragment: what may be shown and recorded."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: shown as it was written
        port = ":" + parts.netloc.rsplit(":", 1)[-1]
    return urlunsplit((parts.scheme, host + port, parts.path.rstrip("/"), "", ""))


def register_run(
    url: str,
    token: str | None,
    project: str,
    record: dict[str, Any],
    artifacts: list[dict[str, Any]],
    placed: dict[str, str],
) -> str:
    """Register the MLRun run ``record`` and its ``artifacts`` on the MLRun API server at ``url``.

    ``placed`` maps an artifact's MLRun key to where the platform stored it. Returns the server's
    public URL; raises :class:`RegistrationError` after deleting what it had already stored."""
    public = public_url(url)
    if urlsplit(public).scheme not in ("http", "https") or not urlsplit(public).hostname:
        raise RegistrationError(
            f"cannot register the run with the MLRun API server {public!r}: not an http(s)://host[:port] URL"
        )
    meta = record.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    iteration = int(meta.get("iteration") or 0)
    stored_artifacts: list[tuple[str, int, str | None]] = []
    run_attempted = False
    db: Any = None
    try:
        if not uid:
            raise ValueError("the MLRun run record has no uid")
        db = _connect(url, token)
        _ensure_project(db, project)
        for artifact in artifacts:
            doc = registered_artifact(artifact, project, uid, placed)
            key = str(doc["spec"].get("db_key") or doc["metadata"]["key"])
            it = int(doc["metadata"].get("iter") or 0)
            tag = doc["metadata"].get("tag") or None
            stored_artifacts.append((key, it, tag))  # before the call: a timeout may still have stored it
            db.store_artifact(key, doc, iter=it, tag=tag, project=project, tree=uid)
        run_attempted = True
        db.store_run(registered_record(record, project, placed), uid, project=project, iter=iteration)
    except Exception as exc:
        if db is not None:
            _rollback(db, project, uid, iteration, stored_artifacts, run_attempted, token)
        raise RegistrationError(
            f"cannot register the run with the MLRun API server {public}: {_scrub(exc, token, urlsplit(url).password)}"
        ) from None
    key_list = ", ".join(k for k, _, _ in stored_artifacts) or "no artifacts"
    print(f"MLRun run {uid} registered with the MLRun API server {public} (project {project}, {key_list})", flush=True)
    return public


def _connect(url: str, token: str | None) -> Any:
    import mlrun.client
    import mlrun.db.httpdb

    credentials = mlrun.client.Credentials(token=token) if token else None
    return mlrun.db.httpdb.HTTPRunDB(url.strip().rstrip("/"), credentials=credentials).connect()


def _ensure_project(db: Any, project: str) -> None:
    import mlrun.errors

    try:
        db.get_project(project)
        return
    except mlrun.errors.MLRunNotFoundError:
        pass
    body = {
        "kind": "project",
        "metadata": {"name": project},
        "spec": {"description": "registered by the DigitalHub Airflow provider"},
    }
    try:
        db.create_project(body)
    except mlrun.errors.MLRunConflictError:
        pass  # created meanwhile by another run


def _rollback(
    db: Any,
    project: str,
    uid: str,
    iteration: int,
    artifacts: list[tuple[str, int, str | None]],
    run: bool,
    token: str | None,
) -> None:
    """Best-effort: delete the run record and the artifacts this registration stored (the project stays:
    it is shared by every run of the project)."""
    import mlrun.errors

    calls: list[tuple[Any, dict[str, Any]]] = []
    if run:
        calls.append((db.del_run, {"uid": uid, "project": project, "iter": iteration}))
    for key, it, tag in reversed(artifacts):
        calls.append((db.del_artifact, {"key": key, "tag": tag, "project": project, "tree": uid, "iter": it}))
    for call, kwargs in calls:
        try:
            call(**kwargs)
        except mlrun.errors.MLRunNotFoundError:
            pass
        except Exception as exc:
            what = f"run {uid}" if call == db.del_run else f"artifact {kwargs['key']}"
            print(f"could not delete the {what} from the MLRun API server again: {_scrub(exc, token)}", flush=True)


def _scrub(exc: Exception, *secrets: str | None) -> str:
    """The error's text, without the token or a password of the URL (neither should be in it)."""
    text = str(exc) or type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _target(artifact: dict[str, Any], path: str) -> str:
    """Where MLRun should look for the artifact: a model's folder (MLRun joins ``model_file`` to it),
    else the platform's file."""
    if artifact.get("kind") == "model":
        model_file = str((artifact.get("spec") or {}).get("model_file") or "")
        if model_file and path.endswith("/" + model_file):
            return path[: -len(model_file)]
    return path


def registered_artifact(artifact: dict[str, Any], project: str, uid: str, placed: dict[str, str]) -> dict[str, Any]:
    """The artifact as MLRun logged it, in ``project`` with tree ``uid`` and its data where the platform put it."""
    doc = copy.deepcopy(artifact)
    meta = doc.setdefault("metadata", {})
    spec = doc.setdefault("spec", {})
    meta["project"] = project
    meta["tree"] = uid
    path = placed.get(str(meta.get("key")))
    if path:
        spec["target_path"] = _target(doc, path)
        if doc.get("kind") == "dataset" and path.endswith(".parquet"):
            spec["format"] = PARQUET  # the platform stores every dataset as Parquet
    return doc


def registered_record(record: dict[str, Any], project: str, placed: dict[str, str]) -> dict[str, Any]:
    """MLRun's run record, with the artifacts it lists pointing where the platform stored them."""
    doc = copy.deepcopy(record)
    doc.setdefault("metadata", {})["project"] = project
    status = doc.get("status") or {}
    uid = str(doc["metadata"].get("uid") or "")
    if isinstance(status.get("artifacts"), list):
        status["artifacts"] = [
            registered_artifact(a, project, uid, placed) if isinstance(a, dict) else a for a in status["artifacts"]
        ]
    return doc
