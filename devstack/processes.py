"""Start, watch and stop the processes of a local stack, each by its own process id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessFailed(RuntimeError):
    pass


class ManagedProcess:
    """A child process whose output goes to a log file, stopped by its own pid (never by name)."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], *, timeout: float = 30.0, what: str = "ready") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ProcessFailed(
                    f"{self.name} exited with code {self.popen.returncode} before it was {what}:\n{self.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.1)
        raise ProcessFailed(f"{self.name} was not {what} after {timeout:.0f}s:\n{self.log_tail()}")

    def wait_for_http(self, url: str, *, timeout: float = 30.0) -> None:
        self.wait_until(lambda: http_answers(url), timeout=timeout, what=f"answering at {url}")

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; always reaps the child and closes its log."""
        try:
            if self.running():
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=timeout)
        finally:
            self._log.close()

    def _tree(self) -> list[int]:
        import psutil

        return [self.pid, *(child.pid for child in psutil.Process(self.pid).children(recursive=True))]

    def pause(self) -> None:
        """Freeze the process and its children (SIGSTOP): the port stays open, nothing answers."""
        for pid in self._tree():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._tree():
            os.kill(pid, signal.SIGCONT)


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - URLs the stack builds itself
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except (urllib.error.URLError, OSError):
        return False
