"""The ``digitalhub`` connection's extras: typed once by the hook, one boolean parser for every key, clear
errors for a wrong type, and the operators' decisions taken from the typed values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import digitalhub_provider as dh

PACKAGE = Path(dh.__file__).parent
TRUE_SPELLINGS = [True, 1, "true", "True", "TRUE", "1", "yes", "Yes", "YES", "on", "On", "ON", " true "]
FALSE_SPELLINGS = [False, 0, "false", "False", "FALSE", "0", "no", "No", "NO", "off", "Off", "OFF"]
BOOLEAN_KEYS = ["in_process", "in_cluster"]


def _hook(monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], conn_id: str = "dh_extras") -> Any:
    """A hook on a connection (defined in the environment, as Airflow reads it) with these extras."""
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "digitalhub", "extra": extra}))
    return DigitalHubHook(conn_id)


def _op(**kwargs: Any) -> Any:
    from digitalhub_provider.operators import PythonRuntimeOperator

    return PythonRuntimeOperator(task_id="t", project="demo", code="def h():\n    pass\n", handler="h", **kwargs)


# -- one boolean parser ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize(
    "value, expected", [*((v, True) for v in TRUE_SPELLINGS), *((v, False) for v in FALSE_SPELLINGS)]
)
def test_every_boolean_key_reads_every_spelling_the_same_way(key: str, value: Any, expected: bool) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtras

    assert getattr(ConnectionExtras.from_dict({key: value}), key) is expected


@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize("value", [None, ""])
def test_an_empty_boolean_is_unset(key: str, value: Any) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtras

    assert getattr(ConnectionExtras.from_dict({key: value}), key) is None


@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize("value", ["maybe", "tru", "enabled", 2, -1, 0.5, [], {}])
def test_a_bad_boolean_is_an_error_naming_the_key_and_the_value(
    key: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtrasError

    hook = _hook(monkeypatch, {key: value})
    with pytest.raises(ConnectionExtrasError) as err:
        hook.get_settings()
    message = str(err.value)
    assert f"connection 'dh_extras': extra {key!r} must be a boolean" in message
    assert message.endswith(f"got {value!r}")
    assert isinstance(err.value, ValueError)
    ok, why = hook.test_connection()  # the connection test in the UI says the same
    assert not ok and f"extra {key!r} must be a boolean" in why


def test_the_in_cluster_and_in_process_spellings_agree_through_the_kubernetes_settings() -> None:
    """Before, ``in_cluster`` knew 1/true/yes (``on`` was false) and ``in_process`` anything but false/0/no/off."""
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    for value in TRUE_SPELLINGS:
        assert KubernetesSettings.from_extras({"in_cluster": value}).in_cluster is True, value
    for value in FALSE_SPELLINGS:
        assert KubernetesSettings.from_extras({"in_cluster": value}).in_cluster is False, value
    with pytest.raises(ValueError, match=r"extra 'in_cluster' must be a boolean .*got 'maybe'"):
        KubernetesSettings.from_extras({"in_cluster": "maybe"})


# -- integers, objects, strings -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected", [(600, 600), ("600", 600), (" 45 ", 45), (90.0, 90), (None, 300), ("", 300)]
)
def test_startup_timeout_reads_integers(value: Any, expected: int) -> None:
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    assert KubernetesSettings.from_extras({"startup_timeout_seconds": value}).startup_timeout_seconds == expected


@pytest.mark.parametrize("value", ["soon", "1.5", 1.5, True, [300]])
def test_a_bad_integer_is_an_error_naming_the_key_and_the_value(value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtrasError

    with pytest.raises(
        ConnectionExtrasError, match=re.escape(f"extra 'startup_timeout_seconds' must be an integer, got {value!r}")
    ):
        _hook(monkeypatch, {"startup_timeout_seconds": value}).get_settings()


PROFILES = {"gpu": {"node_selector": {"pool": "gpu"}, "resources": {"gpu": {"limits": "1"}}}}


@pytest.mark.parametrize("key, attribute", [("profiles", "profiles"), ("pod_operator_kwargs", "operator_kwargs")])
def test_objects_are_read_from_a_json_string_or_a_dict(
    key: str, attribute: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    as_string = _hook(monkeypatch, {key: json.dumps(PROFILES)}, "dh_as_string")
    as_dict = _hook(monkeypatch, {key: PROFILES}, "dh_as_dict")
    for hook in (as_string, as_dict):
        assert getattr(hook.connection_extras, key) == PROFILES
        assert getattr(KubernetesSettings.from_extras(hook.connection_extras), attribute) == PROFILES
        assert getattr(KubernetesSettings.from_extras(hook.extras), attribute) == PROFILES  # a raw dict is typed too
    for empty in (None, "", {}):
        assert getattr(KubernetesSettings.from_extras({key: empty}), attribute) == {}


@pytest.mark.parametrize("key", ["profiles", "pod_operator_kwargs"])
@pytest.mark.parametrize(
    "value, words",
    [('{"gpu": {', "is not valid JSON"), ("not json", "is not valid JSON"), ("[1, 2]", "must be a JSON object"),
     ([1, 2], "must be a JSON object"), (7, "must be a JSON object")],
)  # fmt: skip
def test_a_bad_object_is_an_error_naming_the_key(
    key: str, value: Any, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtrasError

    with pytest.raises(ConnectionExtrasError) as err:
        _hook(monkeypatch, {key: value}).get_settings()
    assert f"connection 'dh_extras': extra {key!r} {words}" in str(err.value)
    assert repr(value) in str(err.value)


@pytest.mark.parametrize("key", ["namespace", "ui_url", "kfp_host", "data_url", "default_image"])
def test_a_string_key_holding_another_type_is_an_error(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtrasError

    with pytest.raises(ConnectionExtrasError, match=f"extra '{key}' must be a string, got 5"):
        _hook(monkeypatch, {key: 5}).get_settings()


@pytest.mark.parametrize("key", ["metadata_password", "mlrun_token"])
def test_a_secret_of_the_wrong_type_is_not_printed(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtrasError

    with pytest.raises(ConnectionExtrasError) as err:
        _hook(monkeypatch, {key: 9876543210}).get_settings()
    assert f"extra {key!r} must be a string, got a int (hidden)" in str(err.value)
    assert "9876543210" not in str(err.value)
    assert "s3cr3t-value" not in repr(_hook(monkeypatch, {key: "s3cr3t-value"}, "dh_ok").connection_extras)


def test_the_launcher_is_local_or_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtras, ConnectionExtrasError

    for value, expected in [(None, "local"), ("", "local"), ("local", "local"), ("Kubernetes", "kubernetes"),
                            ("KUBERNETES", "kubernetes")]:  # fmt: skip
        assert ConnectionExtras.from_dict({"launcher": value}).launcher == expected
    with pytest.raises(ConnectionExtrasError, match="extra 'launcher' must be one of local, kubernetes, got 'k8s'"):
        _hook(monkeypatch, {"launcher": "k8s"}).get_settings()


def test_unknown_keys_are_tolerated_and_empty_strings_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow's UI may add keys of its own, and stores a cleared field as an empty string."""
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    extra = {"__extra__": "x", "some_ui_key": {"nested": [1]}, "namespace": "", "ui_url": "", "in_process": "",
             "service_account": "", "startup_timeout_seconds": "", "default_image": ""}  # fmt: skip
    hook = _hook(monkeypatch, extra)
    x = hook.connection_extras
    assert (x.namespace, x.ui_url, x.in_process, x.service_account, x.startup_timeout_seconds) == (None,) * 5
    assert hook.extras == extra  # the raw JSON is still there, for compatibility
    k8s = KubernetesSettings.from_extras(x)
    assert (k8s.namespace, k8s.service_account, k8s.startup_timeout_seconds) == ("default", None, 300)
    assert k8s.default_image == ""  # an empty image stays empty: the launcher says "no image for the pod"


def test_the_stores_come_from_the_typed_extras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hook = _hook(monkeypatch, {"data_url": str(tmp_path / "data"), "s3_region": "eu-south-1",
                               "mlrun_api": "http://mlrun:8080", "mlrun_token": "tok-123456"})  # fmt: skip
    settings = hook.get_settings()
    assert (settings.data_url, settings.s3_region, settings.mlrun_api, settings.mlrun_token) == (
        str(tmp_path / "data"), "eu-south-1", "http://mlrun:8080", "tok-123456")  # fmt: skip


def test_no_connection_means_the_defaults() -> None:
    from digitalhub_provider.connection_extras import ConnectionExtras
    from digitalhub_provider.hooks.digitalhub import DigitalHubHook
    from digitalhub_provider.launchers.kubernetes import KubernetesSettings

    hook = DigitalHubHook()  # digitalhub_default is not defined
    assert hook.connection_extras == ConnectionExtras() == ConnectionExtras.from_dict({})
    assert hook.extras == {}
    x = hook.connection_extras
    assert (x.launcher, x.in_process, x.ui_url, x.kfp_host, x.profiles) == ("local", None, None, None, {})
    assert KubernetesSettings.from_extras(x) == KubernetesSettings() == KubernetesSettings.from_extras({})
    op = _op()
    assert op.use_kubernetes(hook) is False
    assert op.runs_in_process(*_python_job(), hook) is True
    assert op._link(hook, SimpleNamespace(project="demo", id="r1")) == ""


def test_the_form_fields_are_known_keys_with_their_types() -> None:
    from digitalhub_provider.connection_extras import LAUNCHERS, PARSERS, ConnectionExtras, parse_bool
    from digitalhub_provider.hooks.fields import CONN_FIELDS

    assert set(CONN_FIELDS) <= set(ConnectionExtras.keys())
    for key, form in CONN_FIELDS.items():
        if "boolean" in form["schema"]["type"]:
            assert PARSERS[key] is parse_bool, key
    assert [v for v in CONN_FIELDS["launcher"]["schema"]["enum"] if v] == list(LAUNCHERS)


def test_only_the_hook_reads_the_raw_extras() -> None:
    raw = re.compile(r"hook\.extras\b|\bextras?\.get\(|\bextras?\[|extra_dejson")
    readers = sorted(
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if raw.search(line)
    )
    assert [r.split(":")[0] for r in readers] == ["connection_extras.py", "hooks/digitalhub.py"], readers


# -- the operators' decisions ----------------------------------------------------------------------------
def _python_job() -> tuple[Any, Any]:
    """A python job with no requirements on this Python: it can run in process."""
    return SimpleNamespace(kind="python", spec={}), SimpleNamespace(run_kind=SimpleNamespace(action="job"))


@pytest.mark.parametrize(
    "launcher, local_execution, kubernetes",
    [(None, None, False), ("local", None, False), ("kubernetes", None, True), ("Kubernetes", None, True),
     ("kubernetes", True, False), ("local", False, True)],
)  # fmt: skip
def test_the_launcher_decision_follows_the_typed_value(
    launcher: str | None, local_execution: bool | None, kubernetes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(monkeypatch, {} if launcher is None else {"launcher": launcher})
    assert _op(local_execution=local_execution).use_kubernetes(hook) is kubernetes


def test_a_bad_launcher_fails_the_task_before_any_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.connection_extras import ConnectionExtrasError

    _hook(monkeypatch, {"launcher": "pod"})
    op = _op(digitalhub_conn_id="dh_extras")
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1, xcom_push=lambda **k: None)
    with pytest.raises(ConnectionExtrasError, match="extra 'launcher' must be one of local, kubernetes, got 'pod'"):
        op.execute({"ti": ti, "dag": None})  # type: ignore[arg-type]
    assert dh.list_runs("demo") == []


@pytest.mark.parametrize(
    "extra, task_value, in_process",
    [*(({"in_process": v}, None, True) for v in ("true", "YES", "on", "1", True)),
     *(({"in_process": v}, None, False) for v in ("false", "No", "OFF", "0", False)),
     ({}, None, True), ({"in_process": ""}, None, True),
     ({"in_process": "off"}, True, True), ({"in_process": "on"}, False, False)],
)  # fmt: skip
def test_the_in_process_decision_follows_the_typed_value(
    extra: dict[str, Any], task_value: bool | None, in_process: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(monkeypatch, extra)
    assert _op(in_process=task_value).runs_in_process(*_python_job(), hook) is in_process


def test_in_process_asked_by_the_connection_is_an_error_when_the_function_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digitalhub_provider.errors import EntityError

    fn = SimpleNamespace(kind="python", spec={"requirements": ["six"]})
    run = SimpleNamespace(run_kind=SimpleNamespace(action="job"))
    assert _op().runs_in_process(fn, run, _hook(monkeypatch, {"in_process": "off"}, "dh_off")) is False
    assert _op().runs_in_process(fn, run, _hook(monkeypatch, {}, "dh_unset")) is False
    with pytest.raises(EntityError, match="in_process=True cannot be honoured"):
        _op().runs_in_process(fn, run, _hook(monkeypatch, {"in_process": "yes"}, "dh_yes"))


def test_the_run_link_and_the_kfp_server_follow_the_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from digitalhub_provider.operators import KfpPipelineOperator

    hook = _hook(monkeypatch, {"ui_url": "https://console.example/", "kfp_host": "http://kfp:8888",
                               "kfp_namespace": "kubeflow", "kfp_experiment_id": "e-1"})  # fmt: skip
    run = SimpleNamespace(project="demo", id="r1")
    assert _op()._link(hook, run) == "https://console.example/#/projects/demo/runs/r1"
    op = KfpPipelineOperator(task_id="k", project="demo", workflow="w", reattach_on_retry=False)
    target = op.server_target(hook, None, None, run)  # type: ignore[arg-type]
    assert target == {"host": "http://kfp:8888", "namespace": "kubeflow", "experiment_id": "e-1", "poll_seconds": 5.0}
    mine = KfpPipelineOperator(task_id="k2", project="demo", workflow="w", reattach_on_retry=False,
                               kfp_host="http://other:8888", kfp_namespace="ns")  # fmt: skip
    assert mine.server_target(hook, None, None, run)["namespace"] == "ns"  # type: ignore[arg-type,index]
    assert op.server_target(_hook(monkeypatch, {}, "dh_no_kfp"), None, None, run) is None  # type: ignore[arg-type]


def test_the_kubernetes_launcher_gets_the_typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, {"launcher": "kubernetes", "namespace": "dh", "in_cluster": "Off",
                               "profiles": json.dumps(PROFILES), "startup_timeout_seconds": "42"})  # fmt: skip
    op = _op()
    op._kubernetes = op.use_kubernetes(hook)
    fn, run = _python_job()
    launcher = op.make_launcher(hook, None, fn, run, {})  # type: ignore[arg-type]
    k8s = launcher.k8s  # type: ignore[attr-defined]
    assert (k8s.namespace, k8s.in_cluster, k8s.profiles, k8s.startup_timeout_seconds) == ("dh", False, PROFILES, 42)
