"""The processes under test: database, private redis-server, gunicorns pinned to the server core.

Every process is started through devstack's ManagedProcess (or PostgresServer) and stopped by its
own pid, by `Services.close()`, which `run.py` calls in a `finally`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devstack.postgres_server import databases_for_tests
from devstack.processes import ManagedProcess, ProcessFailed, free_port
from devstack.redis_server import RedisServer
from devstack.stack import BIN, IDP, REPO_ROOT, SITE_A, SITE_B, Site, Stack
from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file

#: A private PostgreSQL sized as a production one would be for the data the bench makes (--scale:
#: 1,000,000 tokens and their indexes hold a few hundred MB), not as the tests' tiny one is.
PRIVATE_POSTGRESQL_SETTINGS = {"shared_buffers": "1GB", "effective_cache_size": "4GB"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants (a database server and its backends)."""
    total = 0.0
    try:
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, FileNotFoundError):
            total += cpu_seconds(process.pid)
    return total


def tree_pids(pid: int) -> list[int]:
    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def pin(pid: int, cores: set[int]) -> None:
    """Pin a process and its children (a server's forked processes) to `cores`."""
    for each in tree_pids(pid):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(each, cores)


@dataclass
class Server:
    """One gunicorn: its master's ManagedProcess, and its single worker's pid."""

    name: str
    process: ManagedProcess
    url: str

    @property
    def workers(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers)

    def rss_mib(self) -> dict[str, float]:
        master = psutil.Process(self.process.pid)
        return {
            "master_rss_mib": round(master.memory_info().rss / 2**20, 1),
            "worker_rss_mib": round(sum(child.memory_info().rss for child in master.children()) / 2**20, 1),
        }


@dataclass
class Services:
    """Everything the bench runs, with its environment; `close()` stops all of it."""

    state: Path
    server_cores: set[int]
    generator_cores: set[int]
    pinned: bool = True
    env: dict[str, str] = field(default_factory=dict)
    database: str = ""
    redis: RedisServer | None = None
    stack: Stack | None = None
    servers: dict[str, Server] = field(default_factory=dict)
    plain_port: int = field(default_factory=free_port)
    helpers: list[ManagedProcess] = field(default_factory=list)
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _databases: object = None

    # --- start-up -------------------------------------------------------------------------------
    def start_backing(self) -> None:
        """A database (PostgreSQL when there is one, else SQLite) and a private redis-server."""
        self._databases = self._exit.enter_context(
            databases_for_tests(self.state / "databases", server_settings=PRIVATE_POSTGRESQL_SETTINGS)
        )
        self.database = self._databases.description
        server = getattr(self._databases, "server", None)
        if server is not None and server.process is not None:
            pin(server.process.pid, self.server_cores)
        self.redis = RedisServer(self.state / "redis").start()
        self._exit.callback(self.redis.stop)
        pin(self.redis.process.pid, self.server_cores)

    @property
    def database_kind(self) -> str:
        return self._databases.kind

    def database_pid(self) -> int | None:
        server = getattr(self._databases, "server", None)
        return server.process.pid if server is not None and server.process is not None else None

    def backing_cpu(self) -> float:
        """CPU seconds so far of redis-server and (when private) PostgreSQL with its backends."""
        total = cpu_seconds(self.redis.process.pid)
        if (pid := self.database_pid()) is not None:
            total += tree_cpu_seconds(pid)
        return total

    def prepare(self, access_token_seconds: int) -> None:
        """Migrate, collect static files and seed the demo clients, as `make run` does."""
        write_private_file(self.state / "signing.pem", generate_rsa_private_key_pem())
        env = {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "OIDC_RSA_PRIVATE_KEY_FILE": str(self.state / "signing.pem"),
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": self._databases.new_database("bench_idp"),
            "SITE_A_DATABASE_URL": self._databases.new_database("bench_site_a"),
            "SITE_B_DATABASE_URL": self._databases.new_database("bench_site_b"),
            "DEMO_PASSWORD": "demo-" + secrets.token_urlsafe(12),
            "ADMIN_PASSWORD": "admin-" + secrets.token_urlsafe(12),
            "SITE_A_CLIENT_SECRET": secrets.token_urlsafe(40),
            "SITE_B_CLIENT_SECRET": secrets.token_urlsafe(40),
            # Tokens outlive the run: no site refreshes in the middle of a measurement.
            "ACCESS_TOKEN_SECONDS": str(access_token_seconds),
            # Every sign-in comes from 127.0.0.1: the per-address lock-out must not count them.
            "LOGIN_ADDRESS_FAILURE_LIMIT": "1000000",
            "DJANGO_LOG_LEVEL": os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
        }
        ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port()}
        self.stack = Stack(state_dir=self.state, ports=ports, env=env)
        self.env = self.stack.env
        self.stack.prepare()

    def start_servers(self, *, pinned: bool, workers: int = 1, threads: int = 1) -> None:
        """The IdP (with the bench's views), site A, site B and site A without sso_client's middleware."""
        self.stop_servers()
        self.pinned = pinned
        ports = self.stack.ports
        self.servers["idp"] = self._serve(IDP, "idp", ports["idp"], "bench.idp_settings", workers, threads)
        self.servers["site_a"] = self._serve(SITE_A, "site_a", ports["site_a"], None, workers, threads)
        self.servers["site_b"] = self._serve(SITE_B, "site_b", ports["site_b"], None, workers, threads)
        self.servers["site_a_plain"] = self._serve(
            SITE_A, "site_a_plain", self.plain_port, "bench.site_a_plain_settings", workers, threads
        )

    def _serve(self, site: Site, name: str, port: int, settings: str | None, workers: int, threads: int) -> Server:
        env = {
            **self.env,
            "BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "STATIC_ROOT": str(self.state / "static" / site.name),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(site.directory)]),
        }
        if settings:
            env["DJANGO_SETTINGS_MODULE"] = settings
        args = [str(BIN / "gunicorn"), "-c", str(REPO_ROOT / "gunicorn.conf.py"), site.wsgi]
        if self.pinned:
            args = ["taskset", "-c", ",".join(map(str, sorted(self.server_cores))), *args]
        process = ManagedProcess(name, args, env=env, cwd=site.directory, log_path=self.state / "logs" / f"{name}.log")
        try:
            process.wait_for_http(f"http://127.0.0.1:{port}/-/health/live/", timeout=60)
        except BaseException:
            process.stop()
            raise
        return Server(name, process, f"http://127.0.0.1:{port}")

    def start_helper(self, name: str, args: list[str]) -> ManagedProcess:
        """A helper process of the bench (the back-channel receiver), on the generator's cores."""
        process = ManagedProcess(
            name,
            ["taskset", "-c", ",".join(map(str, sorted(self.generator_cores))), *args],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
            log_path=self.state / "logs" / f"{name}.log",
        )
        self.helpers.append(process)
        return process

    # --- work inside the IdP's Django -------------------------------------------------------------
    def idp_task(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 3600) -> str:
        env = {
            **self.env,
            **(extra_env or {}),
            "DJANGO_SETTINGS_MODULE": "bench.idp_settings",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(IDP.directory)]),
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.idp_tasks", *args],
            cwd=IDP.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise ProcessFailed(f"bench.idp_tasks {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1]

    # --- shut-down ----------------------------------------------------------------------------------
    def stop_servers(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.process.stop()
        self.servers.clear()

    def close(self) -> None:
        try:
            for helper in self.helpers:
                helper.stop()
            self.stop_servers()
        finally:
            self._exit.close()
