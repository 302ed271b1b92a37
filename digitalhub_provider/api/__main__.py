"""``python -m digitalhub_provider.api`` (or ``digitalhub-api``): the REST API on uvicorn.

The stores are the process's (``DIGITALHUB_HOME``, ``DIGITALHUB_METADATA_URL``, ...), as for
the SDK. Credentials come from the options or, better (they stay out of ``ps``), from
``DIGITALHUB_API_TOKEN``, ``DIGITALHUB_API_USER`` and ``DIGITALHUB_API_PASSWORD``.
"""

from __future__ import annotations

import argparse
import os

from digitalhub_provider.api.auth import Credentials, check_bind


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="digitalhub-api", description="DigitalHub Core's REST API over this platform's stores."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--token", default=os.environ.get("DIGITALHUB_API_TOKEN"), help="bearer token clients send")
    parser.add_argument("--user", default=os.environ.get("DIGITALHUB_API_USER"), help="user for HTTP Basic")
    parser.add_argument("--password", default=os.environ.get("DIGITALHUB_API_PASSWORD"), help="its password")
    parser.add_argument(
        "--airflow-url",
        default=os.environ.get("DIGITALHUB_API_AIRFLOW_URL"),
        help="Airflow's api-server, which executes the runs clients submit (local_execution=False)",
    )
    parser.add_argument("--airflow-user", default=os.environ.get("DIGITALHUB_API_AIRFLOW_USER"), help="its user")
    parser.add_argument(
        "--airflow-password", default=os.environ.get("DIGITALHUB_API_AIRFLOW_PASSWORD"), help="its password"
    )
    parser.add_argument("--max-body-mb", type=float, default=16, help="largest request body (default 16 MiB)")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    credentials = Credentials(token=args.token or None, user=args.user or None, password=args.password)
    check_bind(args.host, credentials)
    import uvicorn

    from digitalhub_provider.api.app import create_app

    executor = None
    if args.airflow_url:
        from digitalhub_provider.api.execution import AirflowRestApi

        if not args.airflow_user or not args.airflow_password:
            raise SystemExit("--airflow-url needs --airflow-user and --airflow-password (or their variables)")
        executor = AirflowRestApi(args.airflow_url, args.airflow_user, args.airflow_password)
    app = create_app(credentials, max_body=int(args.max_body_mb * 1024 * 1024), executor=executor)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
