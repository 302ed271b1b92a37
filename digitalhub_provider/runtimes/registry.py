"""Which runtimes exist, what their runs execute, and which environment they need.

Kept free of imports: the control plane reads it without loading any runtime
library (kfp and mlrun live only in their own environments: docs/design.md, "Runtime environments").
"""

from __future__ import annotations

import sys
from typing import Any

# (kind of the function or workflow, action) -> module whose ``run_job(spec, ctx)`` runs inside the runner
RUNNERS: dict[tuple[str, str], str] = {
    ("python", "job"): "digitalhub_provider.runtimes.python.job",
    ("python", "serve"): "digitalhub_provider.runtimes.python.serve",
    ("mlrun", "job"): "digitalhub_provider.runtimes.mlrun.job",
    ("kfp", "pipeline"): "digitalhub_provider.runtimes.kfp.job",
}
BUILD_ACTION = "build"
SERVE_ACTION = "serve"
# What a service's runner needs besides the runner's own requirements (the ``serve`` extra).
SERVE_REQUIREMENTS = ["uvicorn>=0.30", "nuclio-sdk>=0.6"]
# A function version's ``spec.image`` after a local build: the virtualenv it made, by its key.
LOCAL_IMAGE_SCHEME = "venv://"
# Where an image build's context goes, in the run's folder on the data store (Kaniko reads it there).
BUILD_CONTEXT_FOLDER = "build/"
SERVE_MODULES = ("uvicorn", "nuclio_sdk")

MLRUN_PYTHON = "PYTHON3_11"
MLRUN_REQUIREMENTS = ["mlrun==1.12.1"]
# kfp 2.17.3 requires certifi>=2026.10.19, which is not published: it cannot be installed.
KFP_REQUIREMENTS = ["kfp==2.17.0"]


def current_python() -> str:
    return f"PYTHON3_{sys.version_info.minor}"


def environment_of(kind: str, spec: dict[str, Any]) -> tuple[str, list[str]]:
    """The (python version, requirements) of the environment a runtime's runner needs."""
    extra = list(spec.get("requirements") or [])
    if kind == "mlrun":
        return MLRUN_PYTHON, [*MLRUN_REQUIREMENTS, *extra]
    if kind == "kfp":
        return current_python(), [*KFP_REQUIREMENTS, *extra]
    return spec.get("python_version") or current_python(), extra


def serves_here(python_version: str) -> bool:
    """Whether this interpreter can run a service's runner as it is (its version, uvicorn, nuclio-sdk)."""
    import importlib.util

    return python_version == current_python() and all(importlib.util.find_spec(m) for m in SERVE_MODULES)


def source_fields(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``code`` / ``base64`` / ``code_src`` of a spec (mlrun keeps them in its ``source`` dictionary)."""
    if kind == "mlrun":
        source = spec.get("source") or {}
        return {"code": source.get("code"), "base64": source.get("base64"), "code_src": source.get("source")}
    return {"code": spec.get("code"), "base64": spec.get("base64"), "code_src": spec.get("code_src")}


def in_process_refusal(kind: str, action: str, spec: dict[str, Any]) -> str | None:
    """Why a run of this function cannot run inside the Airflow task's interpreter (None: it can).

    Only a python job without requirements on this interpreter's Python version: anything else
    needs an environment of its own)."""
    if (kind, action) != ("python", "job"):
        return f"only python jobs run in process, not {kind}+{action}"
    python_version, requirements = environment_of(kind, spec)
    if requirements:
        return f"the function has requirements ({', '.join(requirements)}): it runs in its own environment"
    if python_version != current_python():
        return f"the function asks for {python_version} and this worker runs {current_python()}"
    return None
