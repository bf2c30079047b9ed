"""gunicorn settings shared by the IdP and the client sites (local runs, tests and compose.yaml)."""

import atexit
import contextlib
import os
import tempfile
from pathlib import Path

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = 30
graceful_timeout = 10
control_socket_disable = True  # several servers run side by side on one machine
# No access log: Django writes one JSON line per request (sso_client.request_log),
# with its request id; gunicorn's would log each request twice. Should it be turned on again
# (--access-logfile -), this format logs the path only, never the query string: a sign-in
# callback's query carries the authorization code.
accesslog = None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Load the application once, in the master: workers share its memory, and an application that
# refuses to start (no Redis, a missing secret) stops gunicorn with its own one-line message.
preload_app = True

# --- Prometheus metrics from every worker: prometheus_client's multiprocess mode -------------------
# Each worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR and /-/metrics adds them up.
# The variable is set here, in the master, before preload_app loads the application (and so
# prometheus_client, which reads it once, on import). A directory of this server's own unless the
# variable names one; two servers must never share one. Emptied at every (re)load of this file.
METRICS_DIR_PREFIX = "gunicorn-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)
metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
metrics_dir.mkdir(parents=True, exist_ok=True)
for stale in metrics_dir.glob("*.db"):  # a previous run's workers: their counts start again at zero
    stale.unlink(missing_ok=True)


def child_exit(server, worker):
    """A worker ended: its counters stay in the sums, its live gauges go (prometheus_client's docs)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def remove_metrics_files(directory: Path, master_pid: int) -> None:
    """When the master exits (stopped, or refusing to start): its metrics files go, and the
    directory too when it was made here. Registered with atexit, which the workers inherit."""
    if os.getpid() != master_pid:
        return
    for leftover in directory.glob("*.db"):
        leftover.unlink(missing_ok=True)
    if directory.name.startswith(METRICS_DIR_PREFIX):
        with contextlib.suppress(OSError):  # not empty: someone else's files
            directory.rmdir()


atexit.register(remove_metrics_files, metrics_dir, os.getpid())
