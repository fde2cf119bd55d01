"""A throwaway PostgreSQL cluster (Debian packages postgresql + postgis) for the dashboard tests.

``initdb`` in a fresh temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1 with trust
authentication, ``pg_ctl stop`` and the directory removed afterwards. PostgreSQL refuses to run as
root, so as root the cluster runs as the ``postgres`` system user the Debian package creates. No
PostgreSQL means the tests FAIL with the install command: they never skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL = "sudo apt-get install -y postgresql postgis   (Debian/Ubuntu: the server and PostGIS for it)"


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name), reverse=True
    )
    if candidates:
        return Path(candidates[0]).parent
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found. Install them: {INSTALL}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresCluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="dos-pg-"))
        self.data = self.base / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"running as root and there is no 'postgres' user to run PostgreSQL as: {INSTALL}")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=60, check=False)

    def start(self) -> PostgresCluster:
        initdb = self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        started = self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip
        if started.returncode != 0:
            log = (self.base / "server.log").read_text(errors="replace") if (self.base / "server.log").exists() else ""
            pytest.fail(f"pg_ctl start failed:\n{started.stdout}\n{started.stderr}\n{log}")
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """libpq variables that point psql (and scripts using it) at this cluster."""
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port)}

    def psql(
        self, sql: str, *, user: str = "postgres", database: str = "postgres", csv: bool = False
    ) -> subprocess.CompletedProcess[str]:
        command = [
            str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database,
            *(["--csv"] if csv else []), "-f", "-",
        ]  # fmt: skip
        return subprocess.run(command, input=sql, capture_output=True, text=True, timeout=60, env=self.env, check=False)

    def has_extension(self, name: str) -> bool:
        result = self.psql(f"SELECT count(*) FROM pg_available_extensions WHERE name = '{name}';", csv=True)
        return result.returncode == 0 and result.stdout.splitlines()[-1].strip() == "1"
