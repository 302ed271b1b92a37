"""OpenLineage: the runtime operators' facets, and the events Airflow's OpenLineage provider emits with
them (its file transport), for a run that completes and one that fails."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import digitalhub_provider as dh
from digitalhub_provider.lineage import namespace_and_name, operator_lineage
from digitalhub_provider.sdk.context import get_context


def test_a_paths_namespace_is_its_data_store() -> None:
    assert namespace_and_name("s3://bucket/data/demo/dataitem/x/1/data.parquet") == (
        "s3://bucket",
        "data/demo/dataitem/x/1/data.parquet",
    )
    assert namespace_and_name("/srv/dh/data/x.parquet") == (f"file://{socket.gethostname()}", "/srv/dh/data/x.parquet")
    assert namespace_and_name("file:///srv/x.csv") == (f"file://{socket.gethostname()}", "/srv/x.csv")
    assert namespace_and_name("zip+s3://b/k.zip") is None


def test_importing_the_operators_imports_no_openlineage() -> None:
    """Neither the OpenLineage client nor the provider's code (Airflow's provider discovery reads the
    provider's metadata, ``get_provider_info``, whatever is imported)."""
    code = (
        "import sys, digitalhub_provider.operators, digitalhub_provider.assets; "
        "print(sorted(m for m in sys.modules if m.startswith('openlineage') or "
        "(m.startswith('airflow.providers.openlineage.') and not m.endswith('.get_provider_info'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_a_runs_inputs_outputs_schema_and_run_facet() -> None:
    import pandas as pd

    code = "def double(di):\n    df = di.as_df()\n    df['v'] = df['v'] * 2\n    return df\n"
    source = dh.log_dataitem(project="demo", name="numbers", kind="table", data=pd.DataFrame({"k": ["a"], "v": [1]}))
    fn = dh.new_function(project="demo", name="double", kind="python", code=code, handler="double",
                         python_version="PYTHON3_11")  # fmt: skip
    run = fn.run(inputs={"di": source.key}, outputs=["doubled"])
    lineage = operator_lineage(run, get_context())
    (given,) = lineage.inputs
    (made,) = lineage.outputs
    assert (given.namespace, given.name) == namespace_and_name(source.spec["path"])
    assert [(f.name, f.type) for f in given.facets["schema"].fields] == [
        ("k", "large_string"),
        ("v", "int64"),
    ]  # the Parquet file's own types
    assert made.name == namespace_and_name(run.output("doubled").spec["path"])[1]
    facet = lineage.run_facets["digitalhubRun"]
    assert (facet.runKey, facet.state) == (run.key, "COMPLETED") and "errorMessage" not in lineage.run_facets
    assert operator_lineage(None, None).inputs == []


def test_a_failed_run_gives_its_error_message_and_traceback() -> None:
    code = "def boom():\n    raise ValueError('no lineage without data')\n"
    fn = dh.new_function(project="demo", name="boom", kind="python", python_version="PYTHON3_11", code=code,
                         handler="boom")  # fmt: skip
    run = fn.run()
    lineage = operator_lineage(run, get_context(), failed=True)
    error = lineage.run_facets["errorMessage"]
    assert error.message == "handler 'boom' raised ValueError: no lineage without data"
    assert "ValueError" in error.stackTrace and error.programmingLanguage == "python"
    assert lineage.run_facets["digitalhubRun"].state == "ERROR"


def openlineage_events(path: Path, jobs: set[str], timeout: float = 120) -> dict[tuple[str, str], dict[str, Any]]:
    """The OpenLineage events the provider's file transport wrote (a JSON per line), by (job, event type),
    once a COMPLETE or FAIL event of each of ``jobs`` is there."""
    deadline = time.monotonic() + timeout
    by_job: dict[tuple[str, str], dict[str, Any]] = {}
    while time.monotonic() < deadline:
        if path.exists():
            events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            by_job = {(e["job"]["name"], e["eventType"]): e for e in events}
            if all((j, "COMPLETE") in by_job or (j, "FAIL") in by_job for j in jobs):
                return by_job
        time.sleep(0.5)
    raise AssertionError(f"no end event of every one of {sorted(jobs)} after {timeout} s: {sorted(by_job)}")
