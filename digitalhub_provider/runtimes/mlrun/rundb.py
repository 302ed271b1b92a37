"""An in-memory MLRun run DB for local runs without an MLRun API server.

Without an API server MLRun falls back to its ``NopDB``, which forgets everything
it is told. Two things follow (checked on mlrun 1.12.1):

- a run whose handler raised comes back in state ``created`` with no error: MLRun
  looks the run up in the DB to record the failure, finds nothing, and returns the
  run as it was submitted (no exception either);
- the run lists its artifacts only as ``store://`` URIs, which nothing can resolve,
  and ``run.outputs`` waits for ever on a failed run.

This DB keeps the runs and artifacts of the runner process in memory, so MLRun's
own code records the final state and error message, and the artifacts' specs
(kind, target path, model file, ...) can be read back after the run. It is
installed through MLRun's dependency-injection container, the seam MLRun
provides to choose the DB class for a path that is not an API server URL.
"""

from __future__ import annotations

import copy
from typing import Any

_installed: Any = None


def install() -> Any:
    """Make MLRun use the in-memory DB in this process; return it (idempotent)."""
    global _installed
    if _installed is not None:
        return _installed

    import mlrun
    import mlrun.db.factory
    import mlrun.db.nopdb
    from dependency_injector import providers
    from mlrun.utils import logger as mlrun_logger
    from mlrun.utils import update_in

    class MemoryRunDB(mlrun.db.nopdb.NopDB):
        """Runs and artifacts kept in memory; every other call is NopDB's no-op."""

        # NopDB warns "not connected to API server" on every attribute access.
        __getattribute__ = object.__getattribute__

        # Class-level: MLRun's factory makes one instance per DB path, all see the same records.
        runs: dict[tuple[str, str, int], dict[str, Any]] = {}
        artifacts: list[dict[str, Any]] = []

        def store_run(self, struct: Any, uid: str, project: str = "", iter: int = 0) -> None:
            data = struct.to_dict() if hasattr(struct, "to_dict") else struct
            self.runs[(project, uid, int(iter or 0))] = copy.deepcopy(data)

        def update_run(self, updates: dict[str, Any], uid: str, project: str = "", iter: int = 0) -> None:
            run = self.runs.setdefault((project, uid, int(iter or 0)), {})
            for key, value in (updates or {}).items():
                update_in(run, key, copy.deepcopy(value))

        def read_run(self, uid: str, project: str = "", iter: int = 0, format_: Any = None) -> Any:
            run = self.runs.get((project, uid, int(iter or 0)))
            return copy.deepcopy(run) if run is not None else None

        def store_artifact(
            self, key: str, artifact: Any, iter: Any = None, tag: str = "", project: str = "", tree: Any = None
        ) -> Any:
            data = artifact.to_dict() if hasattr(artifact, "to_dict") else artifact
            self.artifacts.append(
                {
                    "db_key": key,
                    "project": project,
                    "tree": tree,
                    "iter": int(iter or 0),
                    "artifact": copy.deepcopy(data),
                }
            )
            return copy.deepcopy(data)

        def read_artifact(
            self,
            key: str,
            tag: str = "",
            iter: Any = None,
            project: str = "",
            tree: Any = None,
            uid: Any = None,
            format_: Any = None,
        ) -> Any:
            for item in reversed(self.artifacts):
                if (
                    item["db_key"] == key
                    and (tree is None or item["tree"] == tree)
                    and (iter is None or item["iter"] == int(iter))
                ):
                    return copy.deepcopy(item["artifact"])
            return None

        def artifacts_of(self, tree: str) -> list[dict[str, Any]]:
            """The artifacts a run (``tree`` is its uid) logged, the last version of each key first seen."""
            latest: dict[str, dict[str, Any]] = {}
            for item in self.artifacts:
                if item["tree"] == tree:
                    key = item["artifact"].get("metadata", {}).get("key") or item["db_key"]
                    latest[key] = item["artifact"]
            return [copy.deepcopy(a) for a in latest.values()]

    level = mlrun_logger.level
    mlrun_logger.set_logger_level("ERROR")  # the factory warns once that there is no API server: expected here
    try:
        mlrun.db.factory.RunDBContainer.nop.override(providers.Factory(MemoryRunDB))
        db = mlrun.get_run_db(force_reconnect=True)
        if not isinstance(db, MemoryRunDB):
            # the factory (a singleton) was made before the override and holds its own container
            mlrun.db.factory.RunDBFactory()._rundb_container.nop.override(providers.Factory(MemoryRunDB))
            db = mlrun.get_run_db(force_reconnect=True)
    finally:
        mlrun_logger.set_logger_level(level)
    if not isinstance(db, MemoryRunDB):
        raise RuntimeError(f"mlrun did not take the in-memory run DB (it uses {type(db).__name__})")
    _installed = db
    return db
