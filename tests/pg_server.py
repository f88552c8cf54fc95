"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary data directory,
127.0.0.1 on a free port, started with ``initdb`` / ``pg_ctl`` and stopped after the session.

PostgreSQL refuses to run as root; the tests run as root in CI, so there the server runs as the
``postgres`` system user that Debian's package creates (``runuser``). ``make test`` installs the
package when it is missing.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path

DB_NAME = "cxr_test"


def pg_bin(name: str) -> str | None:
    """Path of a PostgreSQL server program (Debian keeps them off PATH, under /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """``start()`` -> a SQLAlchemy URL of an empty database; ``stop()`` ends the server."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not (initdb and pg_ctl):
            raise FileNotFoundError("PostgreSQL server programs (initdb, pg_ctl) not found: "
                                    "apt-get install postgresql (make test does)")
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                "-c max_connections=100 -c log_min_messages=warning")
        self._run(pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "start")
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        return self.url()

    def url(self, db: str = DB_NAME) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """A further empty database on the same server (a test that needs a fresh schema)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
