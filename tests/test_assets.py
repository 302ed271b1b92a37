"""Run outputs as Airflow Assets: the URI scheme, the events a run's outputs emit, and the key of the
version that triggered a DAG run."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

import digitalhub_provider as dh
from digitalhub_provider.assets import asset_uri, parse_asset_uri, sanitize_uri, triggering_key


def test_entity_names_become_one_canonical_uri() -> None:
    assert asset_uri("demo", "dataitem", "world-cities") == "digitalhub://demo/dataitem/world-cities"
    plus = asset_uri("demo", "model", "clf+v2")
    assert plus == "digitalhub://demo/model/clf%2Bv2"  # '+' would read as a space in a query: encoded
    assert parse_asset_uri(plus) == ("demo", "model", "clf+v2")
    assert urlunsplit(sanitize_uri(urlsplit("digitalhub://demo/model/clf+v2"))) == plus


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("digitalhub://demo/run/r1", "'run' is not one of dataitem, artifact, model"),
        ("digitalhub://demo/dataitem", "is not a DigitalHub asset URI"),
        ("digitalhub:///dataitem/x", "is not a DigitalHub asset URI"),
        ("digitalhub://demo/dataitem/x/y", "is not a DigitalHub asset URI"),
        ("digitalhub://demo/dataitem/x?v=2", "has no query or fragment"),
    ],
)
def test_a_uri_that_names_no_entity_is_refused(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sanitize_uri(urlsplit(uri))
    with pytest.raises(ValueError, match=message):
        triggering_key(uri)


def test_airflow_normalizes_the_scheme_with_the_providers_handler() -> None:
    from airflow.sdk import Asset

    assert Asset("digitalhub://demo/model/clf+v2").uri == "digitalhub://demo/model/clf%2Bv2"
    with pytest.raises(ValueError, match="is not one of dataitem, artifact, model"):
        Asset("digitalhub://demo/task/t")


def test_a_runs_outputs_are_asset_events_with_their_version(airflow_db: str) -> None:
    """Under dag.test(): world_cities' download emits the world-cities dataitem's event (key, version
    id, run key in its extra), through the operators' alias."""
    from airflow.models.asset import AssetAliasModel, AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.airflow_helpers import load_dag, task_states

    dr = load_dag("world_cities.py").test()
    assert task_states(dr) == {"download": "success", "report": "success"}
    di = dh.get_dataitem("world-cities", project="demo")
    with create_session() as session:
        events = session.scalars(select(AssetEvent)).all()
        found = [(e.asset.uri, e.extra, [a.name for a in e.source_aliases]) for e in events]
        aliases = [a.name for a in session.scalars(select(AssetAliasModel)).all()]
    assert aliases == ["digitalhub-run-outputs"]
    mine = [f for f in found if f[0] == "digitalhub://demo/dataitem/world-cities"]
    assert len(mine) == 1
    _, extra, via = mine[0]
    assert extra["key"] == di.key and extra["id"] == di.id and extra["output"] == "world-cities"
    assert dh.get_run(extra["run_key"]).status.get("outputs") == {"world-cities": di.key}
    assert via == ["digitalhub-run-outputs"]
