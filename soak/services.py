"""Everything the soak runs, on free ports of 127.0.0.1, and the blunt instruments of its faults.

Its own redis-server (append-only file on by default, as production runs it), its own databases
(TEST_DATABASE_URL when set, else a private PostgreSQL from the system's binaries, else SQLite),
the IdP, site A, site B and the back-channel worker through devstack's Stack, and the slow proxy
(soak.proxy) in front of the IdP: the IdP's issuer is the proxy's URL, so everyone reaches it
there. `close()` stops every process by its own pid and drops what it created, and the caller
runs it in a `finally`: on failure and on Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devstack.postgres_server import PostgresDatabases, databases_for_tests, libpq_url
from devstack.processes import ManagedProcess, ProcessFailed, free_port
from devstack.redis_server import RedisServer
from devstack.stack import IDP, REPO_ROOT, SITE_A, SITE_B, Site, Stack
from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file
from soak.bounds import BACKCHANNEL_RETRY_INTERVALS
from soak.proxy import ProxyControl

PARTS: dict[str, Site] = {"idp": IDP, "site_a": SITE_A, "site_b": SITE_B}
PROXY = "idp-proxy"


@dataclass
class Accounts:
    """The soak's own people (never the demo's `alice`): one password for all, never printed."""

    password: str
    crowd: list[str]
    probes: list[str]
    idle: list[str]


@dataclass
class Services:
    state: Path
    aof: bool = True
    access_token_seconds: int = 15
    refresh_margin_seconds: int = 5
    log: callable = print
    redis: RedisServer | None = None
    databases: object = None
    stack: Stack | None = None
    proxy: ProxyControl | None = None
    accounts: Accounts | None = None
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _postgres_logs: list = field(default_factory=list)

    # --- start-up -------------------------------------------------------------------------------
    def start(self, *, crowd: int, probes: int, idle: int) -> None:
        self.databases = self._exit.enter_context(databases_for_tests(self.state / "databases"))
        self.log(f"database: {self.databases.description}")
        self.redis = RedisServer(self.state / "redis", persist=self.aof).start()
        self._exit.callback(lambda: self.redis.stop())  # the Redis of the moment (a fault replaces it)
        self.log(f"redis-server {self.redis_version()} on port {self.redis.port}, append-only file {self.aof_word}")
        write_private_file(self.state / "signing.pem", generate_rsa_private_key_pem())
        ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port(), PROXY: free_port()}
        env = {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "OIDC_RSA_PRIVATE_KEY_FILE": str(self.state / "signing.pem"),
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": self.databases.new_database("soak_idp"),
            "SITE_A_DATABASE_URL": self.databases.new_database("soak_site_a"),
            "SITE_B_DATABASE_URL": self.databases.new_database("soak_site_b"),
            "DEMO_PASSWORD": "demo-" + secrets.token_urlsafe(12),
            "ADMIN_PASSWORD": "admin-" + secrets.token_urlsafe(12),
            "SITE_A_CLIENT_SECRET": secrets.token_urlsafe(40),
            "SITE_B_CLIENT_SECRET": secrets.token_urlsafe(40),
            # Everyone reaches the IdP through the slow proxy: it is the issuer's address.
            "IDP_URL": f"http://127.0.0.1:{ports[PROXY]}",
            # Short-lived access tokens: the sites refresh them behind the pages, often.
            "ACCESS_TOKEN_SECONDS": str(self.access_token_seconds),
            "SSO_REFRESH_MARGIN_SECONDS": str(self.refresh_margin_seconds),
            # Quick retries, so that a logout to a site that was down lands within the soak.
            "BACKCHANNEL_LOGOUT_RETRY_INTERVALS": BACKCHANNEL_RETRY_INTERVALS,
            # Every sign-in comes from 127.0.0.1 and none fails: the lock-out must not count them.
            "LOGIN_FAILURE_LIMIT": "50",
            "LOGIN_ADDRESS_FAILURE_LIMIT": "1000000",
            "DJANGO_LOG_LEVEL": os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
        }
        self.stack = Stack(state_dir=self.state, ports=ports, env=env)
        self._exit.callback(self.stack.stop)
        self.log("migrating, collecting static files, seeding the demo clients")
        self.stack.prepare()
        self.accounts = self._seed_people(crowd=crowd, probes=probes, idle=idle)
        self.log(f"starting the proxy, the IdP, site A, site B and the worker (IdP behind {env['IDP_URL']})")
        self._start_proxy()
        self.stack.start_all()

    @property
    def aof_word(self) -> str:
        return "on" if self.aof else "off"

    def redis_version(self) -> str:
        with self.redis.client() as client:
            return client.info("server")["redis_version"]

    def _start_proxy(self) -> None:
        port = self.stack.ports[PROXY]
        process = ManagedProcess(
            PROXY,
            [sys.executable, "-m", "soak.proxy", str(port), str(self.stack.ports["idp"])],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
            log_path=self.state / "logs" / f"{PROXY}.log",
        )
        self.stack.processes[PROXY] = process  # stopped with the stack, by its pid
        self.proxy = ProxyControl(port)
        process.wait_until(self.proxy.answers, timeout=30, what="answering")

    def _seed_people(self, *, crowd: int, probes: int, idle: int) -> Accounts:
        """The soak's people, made in the IdP's database by bench's seeding task (one shared Argon2id hash)."""
        password = "soak-" + secrets.token_urlsafe(16)
        total = crowd + probes + idle
        env = {
            **self.stack.env,
            "DJANGO_SETTINGS_MODULE": "idp_server.settings",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(IDP.directory)]),
            "BENCH_PASSWORD": password,
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.idp_tasks", "seed-people", str(total), "soak-"],
            cwd=IDP.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise ProcessFailed(f"seeding the soak's people failed:\n{done.stderr[-3000:]}")
        names = [f"soak-{index:06d}" for index in range(total)]
        return Accounts(password, names[:crowd], names[crowd : crowd + probes], names[crowd + probes :])

    # --- where things are -------------------------------------------------------------------------
    def url(self, part: str) -> str:
        """A part's own address (not through the proxy): for health checks and metrics."""
        return self.stack.replica_url(part)

    @property
    def idp_public_url(self) -> str:
        return self.stack.env["IDP_URL"]

    @property
    def site_urls(self) -> dict[str, str]:
        return {"site_a": self.url("site_a"), "site_b": self.url("site_b")}

    @property
    def parts_by_netloc(self) -> dict[str, str]:
        netlocs = {f"127.0.0.1:{self.stack.ports[part]}": part for part in PARTS}
        netlocs[f"127.0.0.1:{self.stack.ports[PROXY]}"] = "idp"
        return netlocs

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.stack.processes.items() if process.running()}

    def stopped(self) -> list[str]:
        """Processes of the stack that are no longer running (none should be, outside a fault)."""
        return [name for name, process in self.stack.processes.items() if not process.running()]

    # --- the faults' instruments ------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL a server of the stack with its whole process tree (gunicorn's workers too)."""
        process = self.stack.processes.pop(name)
        try:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for each in reversed(tree):
            with contextlib.suppress(psutil.NoSuchProcess):
                each.send_signal(signal.SIGKILL)
        process.stop()  # reaps the master and closes its log
        psutil.wait_procs(tree[1:], timeout=10)

    def start_part(self, part: str) -> None:
        """Serve a part again on its port (the stack's environment: the same settings as before)."""
        self.stack.start(PARTS[part])

    def restart_worker(self) -> None:
        if (process := self.stack.processes.pop("worker", None)) is not None:
            process.stop()
        self.stack.start_worker()

    def crash_redis(self) -> None:
        self.redis.crash()

    def start_redis(self) -> None:
        """redis-server again, on the same port with the same files: with the append-only file on,
        it reloads what it had; without, it starts empty."""
        self.redis.stop()  # closes the crashed process's log
        self.redis = RedisServer(self.state / "redis", port=self.redis.port, persist=self.aof).start()

    @property
    def postgres_restartable(self) -> bool:
        server = getattr(self.databases, "server", None)
        return server is not None and server.process is not None

    def stop_postgres(self) -> list[str]:
        """Fast shutdown of the private PostgreSQL (open sessions are ended); returns its command line."""
        server = self.databases.server
        command = psutil.Process(server.process.pid).cmdline()
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=30)
        return command

    def start_postgres(self, command: list[str]) -> None:
        """Start the private PostgreSQL again, as it was started (same data directory, port, settings)."""
        server = self.databases.server
        drop = {}
        if server.user is not None:  # as root it runs as an unprivileged user (devstack.postgres_server)
            account = pwd.getpwnam(server.user)
            drop = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        log = open(server.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._postgres_logs.append(log)
        server.process = subprocess.Popen(
            command,
            cwd=server.directory,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
            stdout=log,
            stderr=subprocess.STDOUT,
            **drop,
        )
        deadline = time.monotonic() + 30
        while not server.answers():
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise ProcessFailed(f"PostgreSQL did not start again:\n{server.log_tail()}")
            time.sleep(0.1)

    def terminate_database_sessions(self) -> int:
        """On a server the soak did not start (TEST_DATABASE_URL): end every session of its databases."""
        import psycopg

        databases: PostgresDatabases = self.databases
        with psycopg.connect(libpq_url(databases.url), autocommit=True, connect_timeout=5) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                (list(databases.created),),
            ).fetchall()
        return len(rows)

    # --- shut-down --------------------------------------------------------------------------------
    def keep_logs(self, destination: Path) -> list[Path]:
        """Copy the processes' logs (gzipped) to `destination`: each line has its request's id."""
        import gzip
        import shutil

        destination.mkdir(parents=True, exist_ok=True)
        kept = []
        for log in sorted((self.state / "logs").glob("*.log")):
            target = destination / f"{log.name}.gz"
            with open(log, "rb") as source, gzip.open(target, "wb") as packed:
                shutil.copyfileobj(source, packed)
            kept.append(target)
        return kept

    def close(self) -> None:
        try:
            self._exit.close()
        finally:
            for log in self._postgres_logs:
                log.close()
