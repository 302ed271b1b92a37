"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from digitalhub_provider.hooks.fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR
    from digitalhub_provider.version import __version__

    return {
        "package-name": "airflow-provider-digitalhub",
        "name": "DigitalHub",
        "description": "Run DigitalHub functions (python, kfp, mlrun runtimes) as Airflow tasks.",
        "versions": [__version__],
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
                "integration-name": "DigitalHub",
                "python-modules": [
                    "digitalhub_provider.operators.python",
                    "digitalhub_provider.operators.kfp",
                    "digitalhub_provider.operators.mlrun",
                ],
            }
        ],
        "hooks": [{"integration-name": "DigitalHub", "python-modules": ["digitalhub_provider.hooks.digitalhub"]}],
    }
