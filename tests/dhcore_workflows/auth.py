"""With the credentials in the environment: read a project, then create it and a function, list them.

The first refused request of an SDK 0.15.11 process raises UnauthorizedError; later ones raise
ClientError("Auth type ... does not support refresh.") (the SDK's refresh fallback is spent).
"""

from __future__ import annotations

import digitalhub as dh
from _common import CODE, PYTHON_VERSION, describe, emit, error_of, param

project = param("project")
observed: dict = {"first_get": error_of(dh.get_project, project)}  # the process's first request
try:
    created = dh.new_project(project)
    fn = dh.new_function(project=project, name="guarded", kind="python", code=CODE, handler="add",
                         python_version=PYTHON_VERSION)  # fmt: skip
    observed.update(
        ok=True,
        project=created.name,
        function_id=fn.id,
        functions=[f.id for f in dh.list_functions(project)],
        projects=sorted(p.name for p in dh.list_projects()),
    )
except Exception as exc:
    observed.update(ok=False, error=describe(exc))
emit(observed)
