"""Run caching: a hit reuses an identical earlier run's outputs and results (no runner, a cached_from
relationship, the same XCom); every kind of difference misses, and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import digitalhub_provider as dh
from digitalhub_provider.errors import EntityError
from digitalhub_provider.sdk.context import get_context

CODE = """
import pandas as pd


def scale(di, factor):
    df = di.as_df()
    df["v"] = df["v"] * factor
    print("computing", flush=True)
    return df, float(df["v"].sum())
"""


def _setup(labels: list[str] | None = None) -> tuple[Any, Any]:
    source = dh.log_dataitem(project="demo", name="numbers", kind="table", data=pd.DataFrame({"v": [1, 2, 3]}))
    fn = dh.new_function(project="demo", name="scale", kind="python", code=CODE, handler="scale",
                         python_version="PYTHON3_11", labels=labels)  # fmt: skip
    return source, fn


def _run(fn: Any, source: Any, factor: int = 2, **kwargs: Any) -> Any:
    return fn.run(inputs={"di": source.key}, parameters={"factor": factor}, outputs=["scaled", "total"], **kwargs)


def test_an_identical_run_reuses_the_earlier_outcome() -> None:
    source, fn = _setup()
    first = _run(fn, source, cache=True)
    assert first.state == "COMPLETED" and first.status.get("cache")["hit"] is False
    second = _run(fn, source, cache=True)
    assert second.state == "COMPLETED" and second.id != first.id
    assert second.status.get("cache") == {"hit": True, "from": first.key}
    assert second.status.get("outputs") == first.status.get("outputs")
    assert second.results() == first.results() == {"total": 12.0}
    assert second.status.get("pid") is None and "computing" not in second.logs()  # no runner
    relations = {(r.type, r.dest) for r in dh.get_run(second.key).metadata.relationships}
    assert ("cached_from", first.key) in relations and ("consumes", source.key) in relations
    assert second.status.message == f"reused the outputs and results of run {first.key} (cache)"
    pd.testing.assert_frame_equal(second.output("scaled").as_df(), first.output("scaled").as_df())


@pytest.mark.parametrize("change", ["parameters", "function", "input", "no-cache", "max_age"])
def test_each_kind_of_difference_misses(change: str) -> None:
    source, fn = _setup()
    first = _run(fn, source, cache=True)
    kwargs: dict[str, Any] = {"cache": True}
    factor = 2
    if change == "parameters":
        factor = 3
    elif change == "function":
        fn = dh.new_function(project="demo", name="scale", kind="python", code=CODE + "\n# v2\n", handler="scale",
                             python_version="PYTHON3_11")  # fmt: skip
    elif change == "input":
        source = dh.log_dataitem(project="demo", name="numbers", kind="table", data=pd.DataFrame({"v": [1, 2, 3]}))
    elif change == "no-cache":
        kwargs = {}
    elif change == "max_age":
        kwargs = {"cache": {"max_age": 1e-6}}  # any earlier run is older than a microsecond once it ended
    again = _run(fn, source, factor, **kwargs)
    assert again.state == "COMPLETED" and "computing" in again.logs()  # executed
    assert again.status.get("outputs")["scaled"] != first.status.get("outputs")["scaled"]
    if change == "max_age":
        assert f"run {first.id} is older than max_age" in again.status.get("cache")["reason"]
    elif change != "no-cache":
        assert again.status.get("cache") == {
            "hit": False,
            "reason": "no earlier COMPLETED run of this function version with the same inputs, parameters and task",
        }


def test_a_non_deterministic_function_is_never_cached() -> None:
    source, fn = _setup(labels=["non-deterministic"])
    _run(fn, source, cache=True)
    again = _run(fn, source, cache=True)
    assert again.status.get("cache") == {"hit": False, "reason": "the function is labelled 'non-deterministic'"}


def test_a_deleted_output_is_not_reused_and_the_run_says_why() -> None:
    source, fn = _setup()
    first = _run(fn, source, cache=True)
    scaled = first.output("scaled")
    path = get_context().data_store(scaled.spec["path"]).local_path(scaled.spec["path"])
    Path(path).unlink()
    again = _run(fn, source, cache=True)
    assert "computing" in again.logs()
    assert again.status.get("cache")["reason"] == (
        f"run {first.id}: the file of its output 'scaled' is gone ({scaled.spec['path']})"
    )
    third = _run(fn, source, cache=True)  # the run that executed is the one now reused
    assert third.status.get("cache") == {"hit": True, "from": again.key}


@pytest.mark.parametrize(
    ("cache", "message"),
    [("yes", "cache must be True, False or"), ({"max_age": -1}, "max_age must be a positive number"),
     ({"ttl": 5}, "cache must be True, False or")],
)  # fmt: skip
def test_a_bad_cache_argument_is_refused_before_any_run(cache: Any, message: str) -> None:
    source, fn = _setup()
    with pytest.raises(EntityError, match=message):
        _run(fn, source, cache=cache)
    assert dh.list_runs("demo") == []


def test_the_operator_caches_and_its_xcom_is_the_same(airflow_db: str) -> None:
    from tests.airflow_helpers import load_dag, task_states, xcoms

    dr = load_dag("cached.py", Path(__file__).parent / "dags").test()
    assert task_states(dr) == {"first": "success", "second": "success"}
    pushed = xcoms("cached", dr.run_id)
    assert pushed[("second", "table")] == pushed[("first", "table")]
    assert pushed[("second", "value")] == pushed[("first", "value")] == 49
    first, second = (dh.get_run(pushed[(t, "return_value")]["run_key"]) for t in ("first", "second"))
    assert second.status.get("cache") == {"hit": True, "from": first.key}
    summary = {k: v for k, v in pushed[("second", "return_value")].items() if k not in ("run_id", "run_key")}
    assert summary == {k: v for k, v in pushed[("first", "return_value")].items() if k not in ("run_id", "run_key")}


def test_build_and_serve_are_not_cached() -> None:
    _source, fn = _setup()
    for action in ("build", "serve"):
        with pytest.raises(EntityError, match=f"cache applies to runs that compute outputs, not to the {action}"):
            fn.run(action=action, cache=True)
    assert dh.list_runs("demo") == []


def test_concurrent_identical_runs_both_execute_and_neither_gives_a_half_written_output() -> None:
    """Nothing is locked: two identical runs started at once (no earlier twin) both execute, each
    registers its own complete output, and a later run reuses one of them."""
    import threading

    source, fn = _setup()
    runs: list[Any] = []
    threads = [threading.Thread(target=lambda: runs.append(_run(fn, source, cache=True))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.state for r in runs) == ["COMPLETED", "COMPLETED"], [r.status.message for r in runs]
    keys = {r.status.get("outputs")["scaled"] for r in runs}
    expected = pd.DataFrame({"v": [2, 4, 6]})
    for run in runs:
        pd.testing.assert_frame_equal(run.output("scaled").as_df(), expected)
    later = _run(fn, source, cache=True)
    assert later.status.get("cache")["hit"] is True and later.status.get("outputs")["scaled"] in keys
    pd.testing.assert_frame_equal(later.output("scaled").as_df(), expected)
