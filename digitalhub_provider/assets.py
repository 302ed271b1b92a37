"""DigitalHub entities as Airflow Assets: ``digitalhub://{project}/{type}/{name}``.

Every output entity of a run the runtime operators execute is an Asset event on that URI, with the
entity's key, its version id and the producing run's key in the event's ``extra``. The outputs are
known only when the run ends, so the operators declare the alias :data:`OUTPUTS_ALIAS` as their
outlet and add the assets at run time. A DAG scheduled on ``Asset(asset_uri("demo", "dataitem",
"world-cities"))`` runs on each new version, and :func:`triggering_key` gives its first task the
key of the version that triggered it.

The provider registers the scheme (``asset-uris`` in its provider info): :func:`sanitize_uri` is
Airflow's normalizer of such URIs, which refuses one that names no entity. Imports nothing from
Airflow at module level: the operators read :data:`OUTPUTS_ALIAS` at DAG-parse time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from urllib.parse import SplitResult

SCHEME = "digitalhub"
OUTPUTS_ALIAS = "digitalhub-run-outputs"
ASSET_TYPES = ("dataitem", "artifact", "model")
# DigitalHub names are letters, digits and ``._+-``; ``+`` (and anything else) is percent-encoded.
SAFE = "._-"


def asset_uri(project: str, entity_type: str, name: str) -> str:
    """The Asset URI of the entity ``name`` of ``project`` (any version)."""
    if entity_type not in ASSET_TYPES:
        raise ValueError(f"{entity_type!r} is not an entity type with assets: {', '.join(ASSET_TYPES)}")
    return f"{SCHEME}://{quote(project, safe=SAFE)}/{entity_type}/{quote(name, safe=SAFE)}"


def parse_asset_uri(uri: str) -> tuple[str, str, str]:
    """(project, type, name) of a ``digitalhub://`` Asset URI."""
    from urllib.parse import urlsplit

    return _parts(urlsplit(uri))


def _parts(uri: SplitResult) -> tuple[str, str, str]:
    segments = uri.path.strip("/").split("/")
    if uri.scheme != SCHEME or not uri.netloc or len(segments) != 2 or not all(segments):
        raise ValueError(f"{uri.geturl()!r} is not a DigitalHub asset URI: digitalhub://<project>/<type>/<name>")
    entity_type, name = segments
    if entity_type not in ASSET_TYPES:
        raise ValueError(f"{uri.geturl()!r}: {entity_type!r} is not one of {', '.join(ASSET_TYPES)}")
    if uri.query or uri.fragment:
        raise ValueError(f"{uri.geturl()!r}: a DigitalHub asset URI has no query or fragment")
    return unquote(uri.netloc), entity_type, unquote(name)


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normalizer for the ``digitalhub`` scheme: a URI naming no entity is refused, a name
    is given its one encoded form (``a+b`` and ``a%2Bb`` are the same asset)."""
    project, entity_type, name = _parts(uri)
    return uri._replace(netloc=quote(project, safe=SAFE), path=f"/{entity_type}/{quote(name, safe=SAFE)}")


def output_events(outputs: dict[str, str], run_key: str) -> list[tuple[str, dict[str, Any]]]:
    """(Asset URI, extra) of each output entity key of a run."""
    from digitalhub_provider.entities.keys import parse_key

    events = []
    for output, key in outputs.items():
        parsed = parse_key(key)
        if parsed.entity_type not in ASSET_TYPES or not parsed.name:
            continue
        extra = {"key": key, "id": parsed.id, "run_key": run_key, "output": output}
        events.append((asset_uri(parsed.project, parsed.entity_type, parsed.name), extra))
    return events


def triggering_key(uri: str) -> str:
    """A template giving the key of the entity version whose Asset event triggered the DAG run
    (the latest by the events' timestamps, when several did: Airflow gives a run's events in no set
    order): for a task's ``inputs``, e.g.
    ``inputs={"di": triggering_key("digitalhub://demo/dataitem/world-cities")}``."""
    from urllib.parse import urlsplit, urlunsplit

    uri = urlunsplit(sanitize_uri(urlsplit(uri)))  # a bad URI fails when the DAG is parsed; Airflow's form
    return (
        # The aliases the events came through are keys too, and have no uri (Airflow's undefined is strict).
        "{% for asset, events in triggering_asset_events.items() if asset.uri is defined and asset.uri == '"
        + uri
        + "' %}"
        "{{ (events | sort(attribute='timestamp') | last).extra.key }}{% endfor %}"
    )
