"""The product's processes on one machine: the IdP (and the client sites), served by gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import ManagedProcess, ProcessFailed, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Site:
    name: str
    directory: Path
    wsgi: str

    def manage(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=self.directory, env=env, capture_output=True, text=True
        )


def start_and_wait_for_exit(site: Site, env: dict[str, str], log_dir: Path) -> tuple[int, str]:
    """Serve `site` with gunicorn as production does, and wait for it to stop by itself (it is
    expected to refuse to start); returns its exit code and what it wrote. Stopped after 30 s."""
    server = ManagedProcess(
        site.name,
        [str(BIN / "gunicorn"), "-c", str(REPO_ROOT / "gunicorn.conf.py"), site.wsgi],
        env={**env, "BIND": f"127.0.0.1:{free_port()}"},
        cwd=site.directory,
        log_path=log_dir / f"{site.name}.log",
    )
    try:
        server.popen.wait(timeout=30)
    finally:
        server.stop()
    return server.popen.returncode, server.log_path.read_text()


IDP = Site("idp", REPO_ROOT / "idp", "idp_server.wsgi")
SITE_A = Site("site_a", REPO_ROOT / "client_site_a", "site_a.wsgi")
SITE_B = Site("site_b", REPO_ROOT / "client_site_b", "site_b.wsgi")
SITES = [IDP, SITE_A, SITE_B]
# Where each part lives, told to every process (client sites and the IdP must find each other).
URL_VARIABLES = {"idp": "IDP_URL", "site_a": "SITE_A_URL", "site_b": "SITE_B_URL"}


@dataclass
class Stack:
    """Configuration and processes of one running stack.

    `env` is what every process gets: the caller's environment plus the stack's own settings.
    """

    state_dir: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {**os.environ, **self.env, "SSO_LOCAL_DIR": str(self.state_dir), "PYTHONUNBUFFERED": "1"}
        for name, variable in URL_VARIABLES.items():
            self.env.setdefault(variable, f"http://127.0.0.1:{self.ports[name]}")
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"

    def url(self, site: Site) -> str:
        return f"http://127.0.0.1:{self.ports[site.name]}"

    @property
    def debug(self) -> bool:
        return self.env.get("DJANGO_DEBUG", "1").lower() in {"1", "true", "yes", "on"}

    def manage(self, site: Site, *args: str) -> str:
        result = site.manage(*args, env=self.env)
        if result.returncode != 0:
            raise ProcessFailed(f"{site.name}: manage.py {' '.join(args)} failed:\n{result.stderr or result.stdout}")
        return result.stdout

    def prepare(self) -> str:
        """Migrate, collect static files (production mode) and seed the demo data; returns the seed report."""
        for site in SITES:
            self.manage(site, "migrate", "--no-input", "-v0")
        if not self.debug:
            for site in SITES:
                self.manage(site, "collectstatic", "--no-input", "-v0")
        return self.manage(IDP, "seed_demo")

    def start(self, site: Site, name: str | None = None, **env: str) -> ManagedProcess:
        """Serve `site` with gunicorn under `name` (the site's own name by default), with `env` added.

        The process listens on `ports[name]`; a name the stack has no port for yet (another replica
        of the site, say "site_a-2") gets a free port, kept in `ports` so that a restart under the
        same name listens where it did. Stopped by `stop()`.
        """
        name = name or site.name
        if name not in self.ports:
            self.ports[name] = free_port()
        process = self._serve(site, name=name, port=self.ports[name], **env)
        self.processes[name] = process
        return process

    def restart(self, site: Site, **env: str) -> ManagedProcess:
        """Stop `site`'s server and serve it again on the same port, as an operator does after a
        configuration change: `env` is added to the stack's environment, so the processes started
        after this (a worker, say) get it too. An empty value stands for a variable removed."""
        self.env.update(env)
        if (running := self.processes.pop(site.name, None)) is not None:
            running.stop()
        return self.start(site)

    def replica_url(self, name: str) -> str:
        """The URL of the process started under `name` (not of a proxy in front of it)."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_replica(self, site: Site, name: str, **env: str) -> tuple[ManagedProcess, str]:
        """One more gunicorn of `site` on a free port (same database, same Redis), with `env` added.

        The caller stops it; returns the process and its URL.
        """
        port = free_port()
        return self._serve(site, name=name, port=port, WEB_CONCURRENCY="1", **env), f"http://127.0.0.1:{port}"

    def _serve(self, site: Site, *, name: str, port: int, **extra_env: str) -> ManagedProcess:
        env = {**self.env, "BIND": f"127.0.0.1:{port}", **extra_env}
        if not self.debug:
            env["STATIC_ROOT"] = str(self.state_dir / "static" / site.name)
        process = ManagedProcess(
            name,
            [str(BIN / "gunicorn"), "-c", str(REPO_ROOT / "gunicorn.conf.py"), site.wsgi],
            env=env,
            cwd=site.directory,
            log_path=self.state_dir / "logs" / f"{name}.log",
        )
        try:
            process.wait_for_http(f"http://127.0.0.1:{port}/-/health/live/")
        except BaseException:
            process.stop()
            raise
        return process

    def start_worker(self, name: str = "worker") -> ManagedProcess:
        """The IdP's back-channel logout worker (retries the deliveries a sign-out could not make).

        More than one may run, each under its own `name`: they share the queue in Redis.
        """
        process = ManagedProcess(
            name,
            [sys.executable, "manage.py", "backchannel_worker"],
            env=self.env,
            cwd=IDP.directory,
            log_path=self.state_dir / "logs" / f"{name}.log",
        )
        self.processes[name] = process
        process.wait_until(lambda: "Retrying back-channel" in process.log_tail(), timeout=30, what="started")
        return process

    def start_all(self) -> None:
        for site in SITES:
            self.start(site)
        self.start_worker()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.processes.clear()
