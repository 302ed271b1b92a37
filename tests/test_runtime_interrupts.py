"""An interrupt (the runner's SIGTERM, a timeout) unwinds every runtime the same way: what the run wrote
is removed and the interrupt reaches the runner, which records it (python and mlrun alike)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from digitalhub_provider.config import Settings
from digitalhub_provider.runtimes.__main__ import Terminated
from digitalhub_provider.runtimes.context import RunnerContext
from digitalhub_provider.runtimes.contract import RunSpec
from digitalhub_provider.runtimes.runner import execute


def _spec(ctx: RunnerContext, runtime: str) -> RunSpec:
    code = base64.b64encode(b"def h():\n    return 1\n").decode()
    return RunSpec(
        run_id="r1", run_key="store://demo/run/x/r1", project="demo", runtime=runtime, action="job",
        function={"kind": runtime, "spec": {}}, source={"inline": {"filename": "main.py", "base64": code}},
        handler="h", data_url=ctx.data_root, result_url=ctx.run_url("r1", "result.json"),
    )  # fmt: skip


@pytest.mark.parametrize("runtime", ["python", "mlrun"])
def test_a_stop_while_outputs_upload_removes_them_and_reaches_the_runner(
    runtime: str, dh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import inspect

    module = importlib.import_module(f"digitalhub_provider.runtimes.{runtime}.job")
    ctx = RunnerContext(Settings.from_env())
    uploaded = ctx.data_url("demo", "dataitem", "out", "x", "data.parquet")
    signature = inspect.signature(module.map_outputs)

    def upload_then_stop(*args: Any, **kwargs: Any) -> Any:
        written = signature.bind(*args, **kwargs).arguments["written"]
        ctx.data_store(uploaded).write_bytes(uploaded, b"half of it")
        written.append(uploaded)
        raise Terminated("the runner received signal 15 (SIGTERM)")

    monkeypatch.setattr(module, "map_outputs", upload_then_stop)
    if runtime == "mlrun":  # MLRun itself lives in its own environment: its run is not what is tested here
        monkeypatch.setattr(module, "run_mlrun", lambda *args, **kwargs: ({}, []))
    with pytest.raises(Terminated):
        execute(_spec(ctx, runtime), ctx)
    assert not ctx.data_store(uploaded).exists(uploaded)
