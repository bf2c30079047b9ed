"""A private, real PostgreSQL from the system's binaries, and fresh databases for tests on any server.

`PostgresServer` runs `initdb` and `postgres` (Debian's `postgresql` package, or any installation
whose `bin/` holds both) in a temporary directory, on a free port of 127.0.0.1, and removes it all
on `stop()`; `halt()` and `resume()` stop it and start it again on its data, as a restart would.
PostgreSQL refuses to run as root: as root the server runs as the user `nobody`.

`databases_for_tests()` picks what the tests run on: `TEST_DATABASE_URL` when set (a `sqlite:` URL
asks for SQLite), else a private server when the binaries exist, else SQLite files. Each test
session makes its own uniquely named databases with `new_database()` and drops exactly those:
tests never touch data they did not create.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devstack.processes import ProcessFailed, free_port
from sso_client.redis_deployment import redacted

#: Where distributions put the server's binaries when they are not on PATH (Debian, RHEL, source builds).
BINARY_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
#: The account the server runs as when the tests run as root (initdb and postgres refuse root).
UNPRIVILEGED_USER = "nobody"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(path))) or (0,)


def postgres_bindir() -> Path | None:
    """The directory holding the system's `initdb` and `postgres`, newest version first; None if absent."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
    for pattern in BINARY_GLOBS:
        candidates += sorted(Path("/").glob(pattern.lstrip("/")), key=_version_key, reverse=True)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres")):
            return directory
    return None


class PostgresServer:
    """A PostgreSQL server of its own on a free port of 127.0.0.1, trust authentication, user `postgres`.

    Its cluster lives in a new temporary directory under `parent` (the system's temporary
    directory by default), removed by `stop()`. Durability is off (fsync, full-page writes,
    synchronous commit): the data is thrown away anyway. No Unix socket, TCP on 127.0.0.1 only.
    """

    def __init__(
        self,
        *,
        parent: Path | None = None,
        port: int | None = None,
        bindir: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.parent = parent
        self.settings = settings or {}  # server settings over the defaults below
        self.port = port or free_port()
        self.bindir = bindir or postgres_bindir()
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None
        self.user: str | None = None
        self._log = None
        self._serve: dict | None = None  # how the server was started, for resume()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "postgres.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return ""

    def _run_as(self) -> dict:
        """subprocess arguments that drop root to UNPRIVILEGED_USER; nothing for anyone else."""
        if os.geteuid() != 0:
            return {}
        account = pwd.getpwnam(UNPRIVILEGED_USER)
        self.user = UNPRIVILEGED_USER
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def start(self, *, timeout: float = 30.0) -> PostgresServer:
        if self.bindir is None:
            raise ProcessFailed("No PostgreSQL server binaries (initdb, postgres) found: install PostgreSQL.")
        try:
            drop = self._run_as()
        except KeyError:
            raise ProcessFailed(
                f"Running as root, and there is no user {UNPRIVILEGED_USER!r} to run PostgreSQL as."
            ) from None
        self.directory = Path(tempfile.mkdtemp(prefix="sso-postgres-", dir=self.parent))
        try:
            if drop:
                os.chown(self.directory, drop["user"], drop["group"])
            data = self.directory / "data"
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
            initdb_args = ["-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]
            initdb = subprocess.run(
                [str(self.bindir / "initdb"), *initdb_args, "--no-instructions"],
                cwd=self.directory,
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                **drop,
            )
            if initdb.returncode != 0:
                raise ProcessFailed(f"initdb exited with code {initdb.returncode}:\n{self.log_tail()}")
            settings = {
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": "",
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "max_connections": "200",
                "shared_buffers": "32MB",
                **self.settings,
            }
            args = [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port)]
            for name, value in settings.items():
                args += ["-c", f"{name}={value}"]
            self._serve = {"args": args, "cwd": self.directory, "env": env, **drop}
            self._start_server(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, timeout: float) -> None:
        assert self._serve is not None
        self.process = subprocess.Popen(**self._serve, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_answering(timeout)

    def halt(self, *, timeout: float = 15.0) -> None:
        """Stop the server as a restart does (fast shutdown: open sessions are ended, transactions
        in flight rolled back), keeping its data for `resume()`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None

    def resume(self, *, timeout: float = 30.0) -> PostgresServer:
        """Start a halted server again: the same data, on the same port."""
        if self._serve is None or self.directory is None:
            raise ProcessFailed("resume() starts a server that was started before and halted, not stopped.")
        if self.process is None:
            self._start_server(timeout)
        return self

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProcessFailed(f"postgres exited with code {self.process.returncode}:\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.1)
        raise ProcessFailed(f"postgres was not answering after {timeout:.0f}s:\n{self.log_tail()}")

    def answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(libpq_url(self.url), connect_timeout=1) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self, *, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: open sessions are ended), SIGKILL if it hangs; then remove the files."""
        try:
            self.halt(timeout=timeout)
        finally:
            self.process = None
            self._serve = None
            if self._log is not None:
                self._log.close()
                self._log = None
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None


def libpq_url(url: str) -> str:
    """`url` with a scheme libpq accepts (Django's URLs may say `pgsql://`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql")) if parts.scheme in POSTGRES_SCHEMES else url


def unique_name(prefix: str) -> str:
    """A new database name: `prefix` made safe (lower case, letters, digits, _), plus random hex."""
    safe = re.sub(r"[^a-z0-9_]+", "_", prefix.lower()).strip("_") or "test"
    return f"{safe[:40]}_{secrets.token_hex(5)}"


class PostgresDatabases:
    """Fresh databases on the PostgreSQL server at `url` (whose own database is only used to CREATE/DROP)."""

    kind = "postgresql"

    def __init__(self, url: str, *, origin: str, server: PostgresServer | None = None) -> None:
        self.url = url
        self.origin = origin
        self.server = server
        self.created: list[str] = []
        self.version = self._server_version()

    def _connect(self):
        import psycopg

        return psycopg.connect(libpq_url(self.url), autocommit=True, connect_timeout=5)

    def _server_version(self) -> str:
        with self._connect() as connection:
            return connection.execute("SHOW server_version").fetchone()[0].split()[0]

    @property
    def description(self) -> str:
        return f"PostgreSQL {self.version} ({self.origin})"

    def url_of(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    def new_database(self, prefix: str) -> str:
        """The URL of a new, empty database named after `prefix`, dropped by `drop_all()`."""
        from psycopg import sql

        name = unique_name(prefix)
        with self._connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.url_of(name)

    def drop_all(self) -> None:
        """Drop the databases this object created (ending any session still connected to them)."""
        from psycopg import sql

        with self._connect() as connection:
            while self.created:
                name = self.created.pop()
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class SqliteDatabases:
    """The fallback: SQLite files in `directory` (which the caller removes)."""

    kind = "sqlite"

    def __init__(self, directory: Path, *, origin: str) -> None:
        self.directory = directory
        self.origin = origin
        self.created: list[Path] = []

    @property
    def description(self) -> str:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} ({self.origin})"

    def new_database(self, prefix: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{unique_name(prefix)}.sqlite3"
        self.created.append(path)
        return f"sqlite:///{path}"

    def drop_all(self) -> None:
        while self.created:
            path = self.created.pop()
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in POSTGRES_SCHEMES


def planned_database() -> str:
    """What `databases_for_tests()` will run on, said before anything starts (for a report header)."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        if is_postgres_url(url):
            return f"PostgreSQL at {redacted(url)} (TEST_DATABASE_URL)"
        return "SQLite (TEST_DATABASE_URL asks for it)"
    if bindir := postgres_bindir():
        return f"PostgreSQL, a private server from {bindir}"
    return f"SQLite ({NO_POSTGRES})"


NO_POSTGRES = (
    "no PostgreSQL: TEST_DATABASE_URL unset and no initdb/postgres installed; "
    "`make system-packages` installs Debian's postgresql"
)


@contextmanager
def databases_for_tests(
    directory: Path, *, server_settings: dict[str, str] | None = None
) -> Iterator[PostgresDatabases | SqliteDatabases]:
    """What the tests run on: TEST_DATABASE_URL; else a private server; else SQLite files in `directory`.

    Everything made here is dropped, and a private server stopped and removed, on exit, even
    when a test fails.
    """
    url = os.environ.get("TEST_DATABASE_URL", "")
    server: PostgresServer | None = None
    if url and is_postgres_url(url):
        where = f"{urlsplit(url).hostname}:{urlsplit(url).port or 5432}"
        databases = PostgresDatabases(url, origin=f"TEST_DATABASE_URL, {where}")
    elif url:
        databases = SqliteDatabases(directory, origin="TEST_DATABASE_URL asks for SQLite")
    elif postgres_bindir() is None:
        databases = SqliteDatabases(directory, origin=NO_POSTGRES)
    else:
        server = PostgresServer(settings=server_settings)
        try:
            server.start()
        except (ProcessFailed, OSError) as error:
            server = None
            first_line = str(error).splitlines()[0]
            databases = SqliteDatabases(directory, origin=f"the private PostgreSQL did not start: {first_line}")
        else:
            runs_as = f", run as {server.user}" if server.user else ""
            origin = f"private server on port {server.port}, binaries in {server.bindir}{runs_as}"
            try:
                databases = PostgresDatabases(server.url, origin=origin, server=server)
            except BaseException:
                server.stop()
                raise
    try:
        yield databases
    finally:
        try:
            databases.drop_all()
        finally:
            if server is not None:
                server.stop()


def run_sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on the database at a Django database `url` (PostgreSQL or SQLite) and commit.

    `query` uses psycopg's `%s` placeholders (turned into `?` for SQLite). Returns the rows, or
    `[(rowcount,)]` for a statement that returns none.
    """
    if is_postgres_url(url):
        import psycopg

        with psycopg.connect(libpq_url(url), connect_timeout=5) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]
    import sqlite3

    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"Not a PostgreSQL or SQLite URL: {redacted(url)}")
    connection = sqlite3.connect(parts.path, timeout=20)
    try:
        with connection:
            cursor = connection.execute(query.replace("%s", "?"), params)
            return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]
    finally:
        connection.close()
