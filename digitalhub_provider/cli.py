"""The ``digitalhub`` command: maintenance of a DigitalHub deployment from a shell.

``digitalhub runs reconcile`` finishes the runs nobody follows any more (see
``RunController.reconcile``); its stores are those of the environment (``DIGITALHUB_*``),
or of an Airflow connection with ``--conn-id``, whose Kubernetes settings also let it ask the
cluster about runs in pods.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from digitalhub_provider.errors import DigitalHubError

if TYPE_CHECKING:
    from digitalhub_provider.entities import Run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitalhub", description=__doc__.split("\n\n")[0])
    groups = parser.add_subparsers(dest="group", required=True)
    runs = groups.add_parser("runs", help="runs").add_subparsers(dest="command", required=True)
    reconcile = runs.add_parser(
        "reconcile",
        help="finish every unfinished run whose follower is gone, from its RunResult or as 'runner lost'",
    )
    reconcile.add_argument("--project", help="only this project's runs (default: every project)")
    reconcile.add_argument(
        "--conn-id", help="the stores of this Airflow connection (default: the DIGITALHUB_* environment)"
    )
    return parser


def reconcile(
    project: str | None = None, conn_id: str | None = None, follower_gone: Callable[[Run], str | None] | None = None
) -> dict[str, int]:
    """Reconcile every unfinished run; ``follower_gone`` adds evidence the processes cannot give (see
    ``RunController.reconcile_unfinished``)."""
    from digitalhub_provider.sdk.controller import PodEvidence, RunController

    pods: PodEvidence | None = None
    if conn_id:
        from digitalhub_provider.hooks.digitalhub import DigitalHubHook
        from digitalhub_provider.launchers.kubernetes import KubernetesSettings
        from digitalhub_provider.launchers.pod_evidence import PodEvidence as ClusterPods

        try:
            hook = DigitalHubHook(conn_id)
            ctx = hook.get_context()
            pods = ClusterPods(KubernetesSettings.from_extras(hook.connection_extras))
        except DigitalHubError:
            raise
        except Exception as exc:  # Airflow's own: no such connection, no database
            raise DigitalHubError(f"connection {conn_id!r}: {type(exc).__name__}: {exc}") from None
    else:
        from digitalhub_provider.sdk.context import get_context

        ctx = get_context()
    controller = RunController(ctx, caller="the reconciler", pods=pods)
    return controller.reconcile_unfinished(project, follower_gone=follower_gone)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        counts = reconcile(args.project, args.conn_id)
    except DigitalHubError as exc:
        print(f"digitalhub: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
