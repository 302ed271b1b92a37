"""Provider conventions: the provider info against Airflow's own schemas, what Airflow reads from it, the version
in one place and the changelog."""

from __future__ import annotations

import configparser
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "airflow-provider-digitalhub"
DOCS = "https://scc-digitalhub.github.io/airflow-provider-digitalhub/"


def _airflow_schema(name: str) -> dict[str, Any]:
    """A schema shipped in Airflow's package, read as Airflow reads it."""
    from airflow.providers_manager import _read_schema_from_resources_or_local_file

    return _read_schema_from_resources_or_local_file(name)  # type: ignore[no-any-return]


def _info() -> dict[str, Any]:
    from digitalhub_provider.get_provider_info import get_provider_info

    return get_provider_info()


def test_the_provider_info_is_valid_for_airflow() -> None:
    import jsonschema

    info = _info()
    schema = _airflow_schema("provider_info.schema.json")  # what Airflow validates at discovery
    jsonschema.validators.validator_for(schema)(schema).validate(info)
    # the stricter schema of Airflow's own providers (provider.yaml): the connection form's definition
    strict = _airflow_schema("provider.yaml.schema.json")
    conn_fields = strict["properties"]["connection-types"]["items"]["properties"]["conn-fields"]
    for conn_type in info["connection-types"]:
        jsonschema.validate(conn_type["conn-fields"], conn_fields)
    # what ProvidersManager checks the field behaviour with, in the form it converts it to
    behaviour = conn_type["ui-field-behaviour"]
    jsonschema.validate(
        {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        },
        _airflow_schema("customized_form_field_behaviours.schema.json"),
    )


def test_the_provider_info_names_everything_airflow_reads() -> None:
    from airflow._shared.module_loading import import_string
    from airflow.sdk import BaseHook, BaseOperatorLink

    from digitalhub_provider.version import __version__

    info = _info()
    assert info["package-name"] == PACKAGE == metadata.distribution(PACKAGE).metadata["Name"]
    assert info["versions"] == [__version__]
    assert info["documentation-url"] == DOCS
    from airflow.api_fastapi.core_api.services.public.providers import _remove_rst_syntax

    assert _remove_rst_syntax(info["description"]).endswith(DOCS)  # the Providers page links it
    assert [i["integration-name"] for i in info["integrations"]] == ["DigitalHub"]
    assert info["integrations"][0]["external-doc-url"] == DOCS
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "digitalhub" and conn_type["hook-name"] == "DigitalHub"
    hook = import_string(conn_type["hook-class-name"])
    assert issubclass(hook, BaseHook) and hook.conn_type == "digitalhub"
    for link in info["extra-links"]:
        assert issubclass(import_string(link), BaseOperatorLink), link
    for group in (*info["operators"], *info["hooks"]):
        for module in group["python-modules"]:
            __import__(module)
    json.dumps(info)  # plain data: Airflow caches and serves it


def test_the_version_is_in_one_place() -> None:
    """version.py holds it; setup.cfg and the provider info read it; the installed distribution has it."""
    from digitalhub_provider.version import __version__

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg["metadata"]["version"] == "attr: digitalhub_provider.version.__version__"
    assert metadata.version(PACKAGE) == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    stated = [
        f"{path.relative_to(REPO)}"
        for path in (REPO / "digitalhub_provider").rglob("*.py")
        if path.name != "version.py" and re.search(r"^\s*__version__\s*=", path.read_text(), flags=re.MULTILINE)
    ]
    assert stated == []


def test_the_changelog_heads_with_this_version() -> None:
    from digitalhub_provider.version import __version__

    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    released = [h for h in headings if h != "Unreleased"]
    assert released and released[0] == __version__, headings
    assert "digitalhub_provider/version.py" in text  # the scheme is written down


def test_the_providers_page_links_to_the_documentation() -> None:
    """Airflow 3.3.2 takes the Providers page's link from the distribution's ``Project-URL: Documentation``
    (setup.cfg's project_urls), overwriting the provider info's ``documentation-url``; without it the page links
    to https://airflow.apache.org/docs/airflow-provider-digitalhub/<version>/, which does not exist."""
    from airflow.api_fastapi.core_api.services.public.providers import _provider_mapper
    from airflow.providers_manager import ProvidersManager

    provider = ProvidersManager().providers[PACKAGE]
    assert _provider_mapper(provider).documentation_url == DOCS


def test_airflow_finds_the_plugin_once_so_every_other_plugin_registers_too() -> None:
    """A second copy of the distribution (setuptools' egg-info left in the checkout, which is on sys.path
    here) makes Airflow load the plugin twice and stop registering the plugins after it: OpenLineage's."""
    from airflow.sdk.plugins_manager import _load_entrypoint_plugins

    names = [type(p).__name__ for p in _load_entrypoint_plugins()[0]]
    assert names.count("DigitalHubPlugin") == 1, names
