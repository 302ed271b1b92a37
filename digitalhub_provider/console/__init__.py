"""DigitalHub's console inside Airflow: static pages (``static/``) that read and write through the REST API.

No build step and no CDN: plain HTML, ES modules and CSS, served by the provider's Airflow plugin at
``/digitalhub/console/`` (:func:`digitalhub_provider.api.plugin.mount_console`). ``docs/console.md``
describes the pages.
"""
