"""Deleting entities together with the files the data store holds for them.

The metadata goes first (nothing is then left pointing at a missing file), the files after: a run's
folder (``runs/<id>/``: RunSpec, RunResult, log, large results) and a dataitem's, artifact's or
model's files when they live under the data store's root (a file elsewhere, e.g. a source URL, is the
user's and stays). A function or workflow with tasks or runs is deleted only with ``cascade``: its
runs would otherwise be left pointing at a version that no longer exists. The SDK and the REST API
both delete through here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import DigitalHubError, EntityError

if TYPE_CHECKING:
    from digitalhub_provider.stores.context import Context

log = logging.getLogger(__name__)

MATERIAL_TYPES = ("dataitem", "artifact", "model")
EXECUTABLE_TYPES = ("function", "workflow")
PAGE = 1000


def delete_versions(ctx: Context, project: str, entity_type: str, name: str, ids: list[str], cascade: bool) -> int:
    """Delete the versions ``ids`` of ``name`` (one id for a task or run) and their files; returns how
    many entities of ``entity_type`` went."""
    files: list[str] = []
    if entity_type in EXECUTABLE_TYPES:
        runs = [row["id"] for fid in ids for row in _every(ctx, project, "run", function_name=name, function_id=fid)]
        tasks = sum(ctx.metadata.count(project, "task", function_name=name, function_id=fid) for fid in ids)
        if (runs or tasks) and not cascade:
            raise EntityError(
                f"{entity_type} {name!r} ({len(ids)} version(s)) has {len(runs)} run(s) and {tasks} task(s): "
                "delete with cascade=True to delete them (and the runs' files) too"
            )
        if cascade:
            ctx.metadata.delete(project, "run", function_name=name, function_ids=ids)
            ctx.metadata.delete(project, "task", function_name=name, function_ids=ids)
        files = [ctx.data_url("runs", run_id) for run_id in runs]
    elif entity_type == "run":
        files = [ctx.data_url("runs", run_id) for run_id in ids]
    elif entity_type in MATERIAL_TYPES:
        files = [f for i in ids for f in _material_files(ctx, entity_type, ctx.metadata.get(project, entity_type, i))]
    deleted = ctx.metadata.delete(project, entity_type, ids=ids)
    remove_files(ctx, files)
    return deleted


def delete_project(ctx: Context, project: str) -> int:
    """A project with everything in it: its entities, its runs' folders and its folder on the data store."""
    runs = [row["id"] for row in _every(ctx, project, "run")]
    deleted = ctx.metadata.delete_project(project)
    remove_files(ctx, [*(ctx.data_url("runs", run_id) for run_id in runs), ctx.data_url(project)])
    return deleted


def remove_files(ctx: Context, urls: list[str]) -> None:
    """Delete each file or folder, and the folders left empty above it on a local data store; one that
    cannot be deleted is logged, not raised: the metadata is already gone, and the next delete of the
    same path finds nothing."""
    for url in urls:
        try:
            ctx.data_store(url).delete(url)
        except DigitalHubError as exc:
            log.warning("could not delete %s from the data store: %s", url, exc)
            continue
        prune_empty_folders(ctx, url)


def prune_empty_folders(ctx: Context, url: str) -> None:
    """Remove the folders above ``url`` that are now empty, up to the data store's root (a local data
    store has folders; an object store has none to leave behind)."""
    store = ctx.data_store(url)
    path, root = store.local_path(url), store.local_path(ctx.data_root)
    if path is None or root is None:
        return
    root = root.resolve()
    folder = path.resolve().parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            return
        folder = folder.parent


def _material_files(ctx: Context, entity_type: str, entity: dict[str, Any]) -> list[str]:
    path = (entity.get("spec") or {}).get("path")
    root = ctx.data_root.rstrip("/") + "/"
    if not isinstance(path, str) or not path.startswith(root):
        return []
    folder = ctx.data_url(entity["project"], entity_type, entity["name"], entity["id"])
    # The version's own folder when the file is in it (as this provider writes them), else the file.
    return [folder] if path.startswith(folder.rstrip("/") + "/") else [path]


def _every(ctx: Context, project: str, entity_type: str, **filters: Any) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        rows = ctx.metadata.list(project, entity_type, limit=PAGE, offset=offset, **filters)
        yield from rows
        if len(rows) < PAGE:
            return
        offset += PAGE
