"""A real PostgreSQL server on loopback for the shared-study tests (tuning.storage).

The server is the distribution's own binaries (Debian: `apt-get install postgresql`, under
/usr/lib/postgresql/NN/bin), started in a temporary folder on 127.0.0.1 with a free port
and its socket in that folder, as the `postgres` OS user when the tests run as root
(initdb refuses root). It is stopped and the folder removed at the end.

pg_hba.conf: the role PASSWORD_ROLE must give a password (scram-sha-256); every other
role is trusted from 127.0.0.1, so URLs without a password work as in the product's docs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from tests.conftest import skip_or_require

ROLE = "tweakops"  # trusted from 127.0.0.1: no password anywhere
PASSWORD_ROLE = "tweakops_pw"  # must authenticate with a password (scram-sha-256)
PASSWORD = "pg-Secret-4-tests"
SUPERUSER = "postgres"
OS_USER = "postgres"  # who runs the server when the tests run as root


def unavailable(message: str) -> NoReturn:
    """Skip, or fail when TWEAKOPS_REQUIRE_POSTGRES=1 (CI must run these tests for real)."""
    skip_or_require("TWEAKOPS_REQUIRE_POSTGRES", "PostgreSQL tests", message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, else the newest Debian version."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def missing_driver() -> str | None:
    """Why SQLAlchemy cannot load its driver for postgresql:// URLs (psycopg2 up to
    SQLAlchemy 2.0, psycopg 3 from 2.1 on), or None when it can."""
    import sqlalchemy

    try:
        sqlalchemy.engine.make_url("postgresql://").get_dialect().import_dbapi()
    except ImportError as exc:
        return f"no PostgreSQL driver for SQLAlchemy {sqlalchemy.__version__} ({exc})"
    return None


@dataclass
class PostgresServer:
    """A running server: where it listens, and how to reach it as its superuser."""

    host: str
    port: int
    folder: Path
    bin: Path
    databases: list[str] = field(default_factory=list)

    def url(self, database: str, role: str = ROLE, password: str | None = None) -> str:
        """The SQLAlchemy URL tweakops.yaml would carry (no password unless given)."""
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{role}{secret}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """One statement as the superuser, outside a transaction (CREATE DATABASE needs it)."""
        import sqlalchemy

        url = f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"
        engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text(sql))
        finally:
            engine.dispose()

    def new_database(self, owner: str = ROLE) -> str:
        """A fresh, empty database owned by `owner`: one per test, so studies never mix."""
        name = f"studies_{uuid.uuid4().hex[:10]}"
        self.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        self.databases.append(name)
        return name


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", OS_USER, "--", *argv]


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(
        _as_server_user(argv), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _pg_hba() -> str:
    return (
        "# written by tests/integration/postgres_fixtures.py\n"
        "local all all trust\n"
        f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
        "host all all 127.0.0.1/32 trust\n"
    )


def _prerequisites() -> Path:
    """The server's binaries; a skip (or failure) saying what to install when something lacks."""
    binaries = postgres_bin()
    if binaries is None:
        unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing: "
            "apt-get install postgresql (see .ci/run)"
        )
    missing = missing_driver()
    if missing:
        unavailable(f"{missing}: pip install -e '.[postgres]'")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            unavailable(f"no OS user {OS_USER!r} to run the server as (initdb refuses root)")
    return binaries


def _server_folder() -> Path:
    """A temp folder with sock/ in it, both owned by the server's OS user when we are root."""
    # Not under pytest's tmp_path: that is 0700 root, and the server runs as another user.
    folder = Path(tempfile.mkdtemp(prefix="tweakops-pg-"))
    sockets = folder / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        server_user = pwd.getpwnam(OS_USER)
        for path in (folder, sockets):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    return folder


def _init_cluster(binaries: Path, data: Path) -> None:
    """initdb (superuser SUPERUSER, UTF8, no fsync) and our pg_hba.conf."""
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER]
    _run([*initdb, "-A", "trust", "-E", "UTF8", "--no-sync"], "initdb")
    (data / "pg_hba.conf").write_text(_pg_hba())


def _start_server(binaries: Path, folder: Path, port: int) -> None:
    """pg_ctl start on 127.0.0.1:port, its socket in folder/sock, durability off (tests)."""
    options = (
        f"-p {port} -k {folder / 'sock'} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(folder / "data")]
    _run(
        [*pg_ctl, "-l", str(folder / "server.log"), "-w", "-t", "60", "start", "-o", options],
        "pg_ctl start",
    )


def _stop_server(binaries: Path, folder: Path) -> None:
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(folder / "data")]
    _run([*pg_ctl, "-w", "-m", "immediate", "stop"], "pg_ctl stop")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; the roles ROLE and PASSWORD_ROLE."""
    binaries = _prerequisites()
    folder = _server_folder()
    port = free_port()
    started = False
    try:
        _init_cluster(binaries, folder / "data")
        _start_server(binaries, folder, port)
        started = True
        server = PostgresServer("127.0.0.1", port, folder, binaries)
        server.execute(f'CREATE ROLE "{ROLE}" LOGIN')
        server.execute(f"CREATE ROLE \"{PASSWORD_ROLE}\" LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        if started:
            with contextlib.suppress(Exception):
                _stop_server(binaries, folder)
        shutil.rmtree(folder, ignore_errors=True)
