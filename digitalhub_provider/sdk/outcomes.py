"""What a run leaves behind: its RunResult, the entities it produced, its log.

Pure reading and bookkeeping; :mod:`.controller` decides the run's state from it
and writes it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from digitalhub_provider.entities import ENTITY_CLASSES, Entity, Run
from digitalhub_provider.entities.executable import STORED_RESULT
from digitalhub_provider.entities.specs import validate_spec
from digitalhub_provider.errors import DigitalHubError, EntityError, EntityNotFoundError
from digitalhub_provider.launchers.base import log_path
from digitalhub_provider.names import validate_name
from digitalhub_provider.runtimes.contract import LOG_FILE, RESULT_FILE, WRITING_FILE, RunResult
from digitalhub_provider.sdk.context import Context
from digitalhub_provider.sdk.runspecs import INPUT_TYPES
from digitalhub_provider.stores.deletion import MATERIAL_TYPES, remove_files

Creates = list[tuple[str, dict[str, Any]]]
log = logging.getLogger(__name__)


def read_result(ctx: Context, run: Run) -> RunResult | None:
    """The RunResult the runner wrote, or None."""
    url = ctx.run_url(run.id, RESULT_FILE)
    store = ctx.data_store(url)
    return RunResult.from_json(store.read_bytes(url)) if store.exists(url) else None


def registrations(run: Run, result: RunResult) -> tuple[Creates, dict[str, str]]:
    """The entities to create for what the run logged and returned (with ``produced_by`` lineage),
    and the run's outputs as name -> key. A bad entity is an :class:`EntityError`."""
    creates: Creates = []
    seen: set[str] = set()
    output_keys: dict[str, str] = {}

    def register(etype: str, data: dict[str, Any]) -> Entity:
        cls = ENTITY_CLASSES.get(etype)
        if cls is None or etype not in INPUT_TYPES:
            raise EntityError(f"a run cannot produce a {etype}")
        entity = cls.from_dict(data)
        entity.spec = validate_spec(etype, entity.kind, entity.spec)
        if entity.project != run.project:
            raise EntityError(f"{entity.key} belongs to another project than the run")
        entity.add_relationship("produced_by", run.key)
        if entity.id not in seen:
            seen.add(entity.id)
            creates.append((etype, entity.to_dict()))
        return entity

    for item in result.logged:
        register(item["type"], item["entity"])
    for name, item in result.outputs.items():
        if item.get("existing"):
            output_keys[name] = item["entity"]["key"]
        else:
            output_keys[name] = register(item["type"], item["entity"]).key
    return creates, output_keys


# Results up to this size (their JSON) are kept in the run's record and in XCom as they are; a larger
# one is a file on the data store with the run (``runs/<id>/results/<name>.json``), referenced.
LARGE_RESULT_BYTES = 64 * 1024


def store_large_results(ctx: Context, run: Run, results: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``results`` with each value over :data:`LARGE_RESULT_BYTES` written to the data store and replaced
    by a reference; and the files written (to remove if the run is not recorded after all)."""
    kept: dict[str, Any] = {}
    written: list[str] = []
    for name, value in results.items():
        raw = json.dumps(value).encode()
        if len(raw) <= LARGE_RESULT_BYTES:
            kept[name] = value
            continue
        url = ctx.run_url(run.id, f"results/{validate_name(name, 'result name')}.json")
        ctx.data_store(url).write_bytes(url, raw)
        written.append(url)
        kept[name] = {STORED_RESULT: {"path": url, "bytes": len(raw)}}
    return kept, written


def delete_written(ctx: Context, result: RunResult | None) -> None:
    """Remove the files of what the run wrote under the data store's root (nothing is registered)."""
    if result is None:
        return
    root = ctx.data_root.rstrip("/") + "/"
    items = [*result.logged, *(o for o in result.outputs.values() if not o.get("existing"))]
    remove_files(ctx, [p for item in items if (p := item["entity"].get("spec", {}).get("path", "")).startswith(root)])


def delete_journaled(ctx: Context, run: Run) -> None:
    """Remove the entity folders the runner of ``run`` journaled before writing them (``writing.json``),
    for a run that did not complete: a runner killed mid-upload leaves no half-written file. Only
    folders of ``run``'s project, under the data store's root, of no registered entity, are removed."""
    url = ctx.run_url(run.id, WRITING_FILE)
    store = ctx.data_store(url)
    try:
        if not store.exists(url):
            return
        folders = json.loads(store.read_bytes(url))
    except (DigitalHubError, ValueError) as exc:
        log.warning("the files run %s was writing could not be listed: %s", run.id, exc)
        return
    root = ctx.data_root.rstrip("/") + "/"
    doomed = []
    for folder in folders if isinstance(folders, list) else []:
        parts = folder[len(root) :].strip("/").split("/") if isinstance(folder, str) and folder.startswith(root) else []
        if len(parts) != 4 or parts[0] != run.project or parts[1] not in MATERIAL_TYPES:
            continue
        if folder != ctx.data_url(*parts, ""):  # e.g. ".." or an empty part
            continue
        try:
            ctx.metadata.get(parts[0], parts[1], parts[3])
            continue  # registered (by another run's id, or a forged journal): not this run's to remove
        except EntityNotFoundError:
            doomed.append(folder)
    remove_files(ctx, doomed)


def store_logs(ctx: Context, run: Run) -> None:
    """A local runner's log, moved next to the RunResult when the data store is not a local folder."""
    url = ctx.run_url(run.id, LOG_FILE)
    store = ctx.data_store(url)
    local = log_path(ctx, run.id)
    if store.local_path(url) is None and local.exists():
        store.upload(local, url)
        local.unlink()


def write_result(ctx: Context, run: Run, result: RunResult) -> None:
    """``result`` as ``run``'s RunResult on the data store (for a runner that writes none: Kaniko)."""
    url = ctx.run_url(run.id, RESULT_FILE)
    ctx.data_store(url).write_bytes(url, result.to_json())


def read_logs(run: Run) -> str:
    """The run's stored log; for a service on Kubernetes that still serves, its pods' logs so far."""
    ctx = run.ctx
    url = ctx.run_url(run.id, LOG_FILE)
    store = ctx.data_store(url)
    if store.exists(url):
        return store.read_bytes(url).decode("utf-8", errors="replace")
    from digitalhub_provider.launchers.pod_evidence import cluster_of

    cluster = cluster_of(run)
    if cluster is not None:
        return cluster.pod_logs(run) or ""
    local = log_path(ctx, run.id)
    return local.read_text(errors="replace") if local.exists() else ""
