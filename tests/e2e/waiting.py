"""Waiting on a condition with a deadline, never a fixed sleep: a busy machine takes longer, not fails."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.2) -> float:
    """Poll `condition` until it is true; return how long that took, or fail naming `what`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} did not happen within {timeout}s"
        time.sleep(every)
    return time.monotonic() - started
