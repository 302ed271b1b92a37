"""The kfp runtime: workflows of kind ``kfp`` and their ``pipeline`` action.

- :mod:`.dsl`: the seed's ``pipeline_context()`` DSL. It only *records* a step
  graph, so it imports no kfp: the Airflow side renders the same graph as a
  TaskGroup (:mod:`digitalhub_provider.operators.kfp_task_group`).
- :mod:`.job`: the runner of a workflow run, inside the kfp environment: record,
  validate, compile to KFP IR YAML, execute with ``kfp.local`` or on a KFP API
  server (:mod:`.server`).
- :mod:`.compile`: the recorded graph as a kfp pipeline (one lightweight
  component per step).
- :mod:`.step`: what one KFP task runs: the step's platform function, through
  the SDK's control plane, as a run that is ``step_of`` the workflow run.
"""
