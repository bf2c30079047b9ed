"""`make run`: the whole product on this machine until Ctrl-C.

Uses REDIS_URL (and REDIS_SENTINELS) when set; otherwise starts a private redis-server of its own, keeping its files
under .local/, and stops it on exit. The demo data is seeded on every start (it is idempotent).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from devstack.processes import ProcessFailed
from devstack.redis_server import RedisServer
from devstack.stack import REPO_ROOT, SITES, Stack
from sso_client.redis_deployment import RedisDeployment

DEFAULT_PORTS = {"idp": 8000, "site_a": 8001, "site_b": 8002}


def main() -> int:
    state_dir = REPO_ROOT / ".local"
    own_redis = None
    stack = None
    # Ctrl-C and `kill` both stop everything. SIGINT is set explicitly: a shell that starts this
    # in the background would otherwise leave it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if os.environ.get("REDIS_URL"):
            # One server, or the primary REDIS_SENTINELS names: the processes' own start-up check.
            if problem := RedisDeployment.from_environ().problem():
                print(f"error: {problem} Or unset REDIS_URL to let `make run` start its own.", file=sys.stderr)
                return 2
        else:
            own_redis = RedisServer(state_dir / "redis", persist=True).start()
            os.environ["REDIS_URL"] = own_redis.url
            print(f"Started a private Redis at {own_redis.url} (files in .local/redis/).")

        stack = Stack(state_dir=state_dir, ports=DEFAULT_PORTS)
        print(stack.prepare(), end="")
        stack.start_all()
        print()
        for site in SITES:
            print(f"  {site.name:7} {stack.url(site)}/")
        print("  worker  back-channel logout retries (log in .local/logs/worker.log)")
        print()
        print("Demo sign-in: alice / $DEMO_PASSWORD, admin / $ADMIN_PASSWORD at /admin/ (local defaults in README.md).")
        print("Logs in .local/logs/. Press Ctrl-C to stop everything.")
        while all(process.running() for process in stack.processes.values()):
            time.sleep(0.5)
        stopped = [name for name, process in stack.processes.items() if not process.running()]
        print(f"error: {', '.join(stopped)} stopped unexpectedly; see .local/logs/.", file=sys.stderr)
        for name in stopped:
            print(stack.processes[name].log_tail(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    except ProcessFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()
        if own_redis is not None:
            own_redis.stop()


if __name__ == "__main__":
    sys.exit(main())
