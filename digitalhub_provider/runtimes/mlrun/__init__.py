"""The mlrun runtime: a DigitalHub function of kind ``mlrun`` run by MLRun, locally, inside the runner.

Only :mod:`job` and :mod:`rundb` import mlrun, and only inside the mlrun environment
(Python 3.11 + mlrun, see :func:`digitalhub_provider.runtimes.registry.environment_of`):
mlrun pins pandas, numpy and tabulate below what Airflow needs, so it never shares an
environment with Airflow.
"""
