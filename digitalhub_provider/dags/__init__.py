"""DAGs the provider ships: ``digitalhub_runs`` executes the runs clients submit through the REST API."""
