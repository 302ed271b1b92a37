"""Start test servers on free ports, each in its own process group, and stop the whole group.

Used by the fixtures in conftest.py; every server is stopped at the end of the
session, also when tests fail, so a test run leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # stragglers left in the group after the leader exited
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def process_group(
    cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None, timeout: float = 60.0
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    try:
        wait_port(port, timeout, proc)
        yield proc
    finally:
        stop_group(proc)


@contextmanager
def moto_server(tmp: Path) -> Iterator[str]:
    port = free_port()
    import sys

    with process_group(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, tmp / "moto.log"
    ):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, nothing persisted; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]
    with process_group(cmd, port, tmp / "redis.log"):
        yield f"redis://127.0.0.1:{port}/0"


def create_database(pg_url: str, name: str) -> str:
    """A new database on the server of ``pg_url`` (a SQLAlchemy URL); the URL of the new one."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


class PostgresServer:
    """A throw-away PostgreSQL cluster (Debian's binaries) on a free port, in its own process group;
    :meth:`restart` stops and starts it on the same port and data (what a server restart does to
    its clients' connections)."""

    def __init__(self, tmp: Path) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.log = tmp / "postgres.log"
        # A folder of its own under /tmp: as root, the server runs as the postgres user,
        # which cannot enter pytest's private temporary folders.
        self.base = Path(tempfile.mkdtemp(prefix="dh-pg-"))
        data = self.base / "data"
        self.preexec: Any = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)

            def preexec() -> None:
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)

            self.preexec = preexec
        res = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "dh", "-A", "trust", "--no-sync"],
            capture_output=True,
            text=True,
            preexec_fn=self.preexec,
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr.strip()}")
        self.port = free_port()
        self.cmd = [
            str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.base),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"postgresql+psycopg2://dh@127.0.0.1:{self.port}/dh"

    def start(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=self.preexec,
            )
        wait_port(self.port, 60, self.proc)
        import psycopg2

        for attempt in range(100):
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, user="dh", dbname="postgres").close()
                return
            except psycopg2.OperationalError:
                if attempt == 99:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def postgres(tmp: Path) -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer` with a database ``dh``; stopped and removed on exit."""
    server = PostgresServer(tmp)
    try:
        server.start()
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="dh", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE dh")
        conn.close()
        yield server
    finally:
        server.close()


@contextmanager
def postgres_server(tmp: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster with a database ``dh``: its URL."""
    with postgres(tmp) as server:
        yield server.url
