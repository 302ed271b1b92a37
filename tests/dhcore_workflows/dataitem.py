"""A table dataitem: log a DataFrame (parquet on S3, in the project's default_files_store) and read it back."""

from __future__ import annotations

import json

import digitalhub as dh
import pandas as pd
from _common import emit, param, relationships

project, store = param("project"), param("files_store")
dh.get_or_create_project(project, config={"default_files_store": store})

df = pd.DataFrame(
    {"city": ["Trento", "Bolzano", "Verona"], "population": [118000, 107000, 257000], "area": [157.9, 52.3, 198.9]}
)
logged = dh.log_dataitem(project=project, name="cities", kind="table", data=df)
back = dh.get_dataitem("cities", project=project)
read = back.as_df()
by_key = dh.get_dataitem(logged.key)

emit(
    {
        "logged": {"id": logged.id, "key": logged.key, "kind": logged.kind, "state": logged.status.state},
        "back": {
            "id": back.id,
            "state": back.status.state,
            "path": back.spec.path,
            "schema": back.spec.schema,
            "preview": getattr(back.status, "preview", None),
            "relationships": relationships(back),
        },
        "by_key_id": by_key.id,
        "records": json.loads(read.to_json(orient="records")),
        "columns": list(read.columns),
        "listed": [d.id for d in dh.list_dataitems(project)],
    }
)
