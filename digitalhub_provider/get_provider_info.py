"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point.

What Airflow 3.3.2 reads (``airflow.providers_manager`` and ``airflow/_shared/providers_discovery``): the dictionary
is checked against ``airflow/provider_info.schema.json`` (tested, with the stricter ``conn-fields`` definition of
``provider.yaml.schema.json`` too); ``package-name`` must be the distribution's name; the version shown is the
distribution's (``setup.cfg`` reads :mod:`digitalhub_provider.version`, as ``versions`` here does); the
Providers page links the package name to ``documentation-url``, which Airflow 3.3.2 takes from the
distribution's ``Project-URL: Documentation`` metadata (``setup.cfg``'s ``project_urls``), overwriting this
dictionary's (the description holds the URL too: the page shows it as a link); ``connection-types`` (with
their ``conn-fields`` and ``ui-field-behaviour``, read without importing the hook), ``extra-links`` (the link
classes the API server may deserialise), ``integrations``, ``operators``, ``hooks`` and ``asset-uris`` (the
``digitalhub`` scheme's normalizer).

Kept free of imports beyond the form's declaration and the version: Airflow calls this in every process that
discovers providers.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "airflow-provider-digitalhub"
DOCUMENTATION_URL = "https://scc-digitalhub.github.io/airflow-provider-digitalhub/"
INTEGRATION = "DigitalHub"


def get_provider_info() -> dict[str, Any]:
    from digitalhub_provider.hooks.fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR
    from digitalhub_provider.version import __version__

    return {
        "package-name": PACKAGE_NAME,
        "name": "DigitalHub",
        # The Providers page shows a URL in the description as a link (as Airflow's own providers do).
        "description": f"Run DigitalHub functions (python, kfp, mlrun runtimes) as Airflow tasks: {DOCUMENTATION_URL}",
        "versions": [__version__],
        "documentation-url": DOCUMENTATION_URL,
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": DOCUMENTATION_URL,
                "tags": ["software"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "digitalhub_provider.hooks.digitalhub.DigitalHubHook",
                "hook-name": "DigitalHub",
                "connection-type": "digitalhub",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": ["digitalhub_provider.links.run.DigitalHubRunLink"],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "digitalhub_provider.operators.python",
                    "digitalhub_provider.operators.kfp",
                    "digitalhub_provider.operators.mlrun",
                    "digitalhub_provider.operators.submitted",
                    "digitalhub_provider.operators.stop",
                ],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["digitalhub_provider.hooks.digitalhub"]}],
        # Run outputs as Assets: digitalhub://{project}/{type}/{name} (digitalhub_provider.assets)
        "asset-uris": [{"schemes": ["digitalhub"], "handler": "digitalhub_provider.assets.sanitize_uri"}],
    }
