"""Health checks of the product's containers (compose.yaml's `healthcheck: test:`), standard library and rq only.

    python deploy/healthcheck.py http URL_VARIABLE     # a web process: /-/health/ready/ answers 200
    python deploy/healthcheck.py worker QUEUE          # the back-channel worker is registered in Redis
    python deploy/healthcheck.py heartbeat FILE SECONDS  # housekeeping touched FILE within SECONDS

Exit status 0 when healthy, 1 with one line on stderr saying what is wrong. `tests/e2e/test_compose.py`
runs these same commands against the processes it starts.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 4


def check_http(url_variable: str) -> str | None:
    """Ask the process listening on BIND (gunicorn.conf.py's variable) for /-/health/ready/.

    The request names the public host and scheme (the Host and X-Forwarded-Proto a TLS proxy would
    send), so Django's ALLOWED_HOSTS and HTTPS redirect treat it as any visitor's request.
    """
    public = urlsplit(os.environ[url_variable])
    port = int(os.environ.get("BIND", "127.0.0.1:8000").rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request(
            "GET",
            "/-/health/ready/",
            headers={"Host": public.netloc, "X-Forwarded-Proto": public.scheme, "Accept": "application/json"},
        )
        response = connection.getresponse()
        body = response.read(2000).decode(errors="replace")
    except OSError as error:
        return f"no answer on port {port}: {error}"
    finally:
        connection.close()
    if response.status != 200:
        return f"/-/health/ready/ answered {response.status}: {body.strip()[:300]}"
    return None


def check_worker(queue_name: str) -> str | None:
    """An RQ worker of this host (this container) listens on `queue_name` and its process is alive.

    RQ keeps a worker's registration only while the worker refreshes it (its heartbeat), so a
    worker that lost Redis or hangs drops out of the list within a few minutes.
    """
    import redis
    from rq import Queue, Worker

    from sso_client.redis_deployment import RedisDeployment

    connection = RedisDeployment.from_environ().client(timeout=TIMEOUT_SECONDS)
    try:
        workers = Worker.all(queue=Queue(queue_name, connection=connection))
    except redis.RedisError as error:
        return f"cannot ask Redis for the workers: {error}"
    host = socket.gethostname()
    mine = [worker for worker in workers if worker.hostname == host and worker.pid and process_alive(worker.pid)]
    if not mine:
        return f"no worker of host {host} is registered for the {queue_name!r} queue"
    return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_heartbeat(path: str, max_age: str) -> str | None:
    try:
        age = time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        return f"{path} does not exist yet"
    if age > float(max_age):
        return f"{path} was last touched {age:.0f}s ago (more than {max_age}s)"
    return None


CHECKS = {"http": check_http, "worker": check_worker, "heartbeat": check_heartbeat}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    problem = CHECKS[argv[1]](*argv[2:])
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
