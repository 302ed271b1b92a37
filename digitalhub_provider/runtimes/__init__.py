"""Code that runs inside a job (subprocess or pod). Never imports Airflow."""
