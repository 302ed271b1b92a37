"""DigitalHub Core's REST API, served over this platform's stores.

The official ``digitalhub`` SDK (and DigitalHub's console) talk to a platform through
this API: projects, versioned functions and workflows, tasks, runs and their logs,
dataitems, artifacts and models, in the shapes, list pages and error texts the SDK
parses (``docs/rest-api.md`` lists the routes). It runs standalone
(``python -m digitalhub_provider.api``, on uvicorn) or inside Airflow's api-server.

Nothing here is imported by the operators or the SDK: the app is built on demand
(:func:`digitalhub_provider.api.app.create_app`).
"""
