"""`--profile`: py-spy samples each server worker a scenario loads during its measured window.

For every (scenario, server) pair, `py-spy record --format raw --nonblocking` (about 200 Hz, on the
load generator's cores, never on the server's) writes collapsed stacks to
bench/results/profiles/<scenario>-<server>.txt: one line per distinct stack, frames from the
outermost to the innermost separated by `;`, each `function (file:line)`, then a space and the
number of samples. From those the bench computes, per server:

- categories: each sample goes to the category of its innermost frame that some rule of
  CATEGORIES matches (checked from the leaf upward, the first rule that matches that frame);
  a sample with no matching frame at all is "other";
- the 15 product functions (files under idp/ or sso_client/) with the largest inclusive share
  (samples with the function anywhere on the stack, counted once however deep the recursion);
- the 15 functions with the largest self share (the sample's innermost Python frame).

Shares are of all samples py-spy took. py-spy leaves out threads it judges idle, but a sync worker
blocked in `recv` inside gunicorn's `util.close_graceful` (the response is sent; gunicorn waits for
the client to close the connection) is sampled anyway: such samples are a category of their own,
marked as waiting, not CPU, like the worker waiting in `select` for its next connection.

py-spy needs ptrace (root, or CAP_SYS_PTRACE, or a permissive kernel.yama.ptrace_scope). When it
cannot run, the profile says why and the bench goes on: a profile never fails the bench.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

RATE = 200  # samples per second
TOP = 15
STOP_TIMEOUT = 15.0  # seconds py-spy gets to write its file after SIGINT

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("idp/", "sso_client/")  # paths relative to the repository: the product's own code

WAIT_CLOSE = "gunicorn: waiting for the client to close (close_graceful)"
WAIT_CONNECTION = "gunicorn: waiting for a connection (select)"
OUTGOING = "outgoing HTTP, waiting on the other server (requests, urllib3)"
#: Categories that are waiting, not CPU.
WAITING = (WAIT_CLOSE, WAIT_CONNECTION, OUTGOING)


def _prefix(*prefixes: str):
    return lambda function, path: path.startswith(prefixes)


#: (category, rule): a rule sees a frame's function name and its short path (bench.profile.short:
#: the part after site-packages/, the part under the repository, or "<stdlib>/..."). For each
#: sample the frames are checked from the innermost outward; the first frame some rule matches
#: decides, and for that frame the first matching rule in this order. So a specific library
#: called from Django or the product counts as that library (psycopg under the ORM is "waiting
#: on the database"), and "Django (other)" or "product code" only get what they run themselves,
#: or in libraries and the standard library no rule names (json, hmac, re, ...).
CATEGORIES: list[tuple[str, object]] = [
    # gunicorn's sync worker: response sent, half-closed, blocked in recv() until the client closes.
    (WAIT_CLOSE, lambda function, path: function == "close_graceful" and path.startswith("gunicorn/")),
    # gunicorn's sync worker between requests: select() on the listening socket.
    (WAIT_CONNECTION, lambda function, path: function == "wait" and path == "gunicorn/workers/sync.py"),
    # Argon2id (the C library runs under argon2-cffi's Python frames) and Django's hasher around it.
    ("password hashing (argon2)", _prefix("argon2/", "_argon2_cffi_bindings/", "django/contrib/auth/hashers.py")),
    # Signing ID tokens and access tokens (IdP), verifying them and the JWKS (sites).
    (
        "RSA signing and JOSE (jwcrypto, joserfc, cryptography)",
        _prefix("jwcrypto/", "joserfc/", "cryptography/", "authlib/jose/", "jwt/"),
    ),
    # The driver itself: sending the query, waiting for PostgreSQL, reading rows (SQLite likewise).
    (
        "SQL: waiting on the database (psycopg)",
        _prefix("psycopg/", "psycopg_pool/", "psycopg_binary/", "<stdlib>/sqlite3/"),
    ),
    # Building querysets and compiling them to SQL.
    (
        "SQL: Django ORM compiling",
        _prefix(
            "django/db/models/sql/",
            "django/db/models/query.py",
            "django/db/models/query_utils.py",
            "django/db/models/expressions.py",
            "django/db/models/lookups.py",
            "django/db/models/aggregates.py",
            "django/db/models/functions/",
        ),
    ),
    # The rest of django.db: model instances from rows, fields' conversions, connections, transactions.
    ("SQL: Django ORM (other: rows to models, fields, connections)", _prefix("django/db/")),
    ("Redis (redis-py)", _prefix("redis/", "django_redis/", "rq/")),
    (
        "OAuth libraries (oauthlib, django-oauth-toolkit, authlib)",
        _prefix("oauthlib/", "oauth2_provider/", "authlib/"),
    ),
    ("templates (django/template)", _prefix("django/template/", "django/templatetags/")),
    ("metrics (prometheus_client, django_prometheus)", _prefix("prometheus_client/", "django_prometheus/")),
    ("logging (structlog, logging)", _prefix("structlog/", "django_structlog/", "<stdlib>/logging/")),
    ("CSP (csp)", _prefix("csp/")),
    ("sessions", _prefix("django/contrib/sessions/")),
    # A site's server-to-server call to the IdP (the SSO hop's code exchange): the worker waits.
    (OUTGOING, _prefix("requests/", "urllib3/", "httpx/", "httpcore/", "<stdlib>/http/client.py")),
    # Parsing requests, writing responses, the worker's loop.
    ("gunicorn: HTTP and sockets", _prefix("gunicorn/", "<stdlib>/socket.py", "<stdlib>/selectors.py")),
    (
        "Django request handling (other)",
        _prefix("django/", "asgiref/", "whitenoise/", "axes/", "django_otp/", "ipware/", "python_ipware/"),
    ),
    ("product code (idp/, sso_client/)", _prefix(*PRODUCT)),
]
OTHER = "other"
CATEGORY_NAMES = [name for name, _ in CATEGORIES] + [OTHER]
#: Column headings of the report's table.
SHORT = dict(
    zip(
        CATEGORY_NAMES,
        [
            "wait: client close",
            "wait: next connection",
            "argon2",
            "RSA / JOSE",
            "SQL: psycopg",
            "SQL: ORM compiling",
            "SQL: ORM other",
            "Redis",
            "OAuth libs",
            "templates",
            "metrics",
            "logging",
            "CSP",
            "sessions",
            "wait: HTTP to another server",
            "gunicorn HTTP",
            "Django other",
            "product code",
            "other",
        ],
        strict=True,
    )
)

FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
STDLIB = re.compile(r"/lib/python\d+\.\d+/")


def short(path: str) -> str:
    """The part of a frame's file name that says what it is: after site-packages/, under the repo..."""
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1]
    with contextlib.suppress(ValueError):
        return Path(path).relative_to(ROOT).as_posix()
    if match := STDLIB.search(path):
        return "<stdlib>/" + path[match.end() :]
    return path


def parse_frame(text: str) -> tuple[str, str]:
    """(function, short path) of one `function (file:line)` frame; the line number is dropped."""
    match = FRAME.match(text)
    if not match:
        return text, ""
    return match["function"], short(match["path"])


def categorize(frames: list[tuple[str, str]]) -> str:
    for function, path in reversed(frames):  # innermost first
        for name, rule in CATEGORIES:
            if rule(function, path):
                return name
    return OTHER


def parse_collapsed(text: str) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([parse_frame(frame) for frame in stack.split(";")], int(count)))
    return stacks


def label(frame: tuple[str, str]) -> str:
    return f"{frame[0]} ({frame[1]})" if frame[1] else frame[0]


def analyse(text: str) -> dict:
    """Categories, top product functions (inclusive) and top functions (self) of collapsed stacks."""
    stacks = parse_collapsed(text)
    total = sum(count for _, count in stacks)
    categories: Counter = Counter()
    inclusive: Counter = Counter()
    self_time: Counter = Counter()
    for frames, count in stacks:
        categories[categorize(frames)] += count
        for frame in {frame for frame in frames if frame[1].startswith(PRODUCT)}:
            inclusive[label(frame)] += count
        if frames:
            self_time[label(frames[-1])] += count

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    waiting = sum(categories[name] for name in WAITING)
    return {
        "samples": total,
        "waiting_percent": share(waiting),
        "categories_percent": {name: share(categories[name]) for name in CATEGORY_NAMES if categories[name]},
        "top_product_inclusive_percent": [
            {"function": name, "percent": share(count)} for name, count in inclusive.most_common(TOP)
        ],
        "top_self_percent": [{"function": name, "percent": share(count)} for name, count in self_time.most_common(TOP)],
    }


def display(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    """One py-spy on one worker."""

    server: str
    pid: int
    path: Path
    log: Path
    process: subprocess.Popen | None = None
    error: str | None = None


@dataclass
class Session:
    """py-spy on every worker of the named servers, for one scenario's measured window."""

    profiler: Profiler
    key: str
    servers: dict[str, list[int]]
    recordings: list[Recording] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    def start(self) -> None:
        binary = py_spy_binary()
        self.started = time.monotonic()
        for server, pids in self.servers.items():
            for pid in pids:
                name = f"{self.key}-{server}" + (f"-{pid}" if len(pids) > 1 else "")
                recording = Recording(server, pid, self.profiler.out / f"{name}.txt", self.profiler.out / f"{name}.log")
                self.recordings.append(recording)
                recording.path.unlink(missing_ok=True)
                if binary is None:
                    recording.error = "py-spy is not installed (it is in requirements.txt: make bench installs it)"
                    continue
                args = [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", str(self.profiler.rate)]
                args += ["--nonblocking", "--full-filenames", "--output", str(recording.path)]
                if self.profiler.cores:
                    args = ["taskset", "-c", ",".join(map(str, sorted(self.profiler.cores))), *args]
                try:
                    with recording.log.open("wb") as log:
                        recording.process = subprocess.Popen(
                            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                        )
                except OSError as error:
                    recording.error = f"py-spy did not start: {error}"

    def stop(self) -> None:
        """Ask every py-spy to stop (SIGINT: it writes its file); `finish()` waits for them."""
        self.stopped = time.monotonic()
        for recording in self.recordings:
            if recording.process is not None and recording.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    recording.process.send_signal(signal.SIGINT)

    def finish(self) -> dict:
        """Wait for py-spy, analyse what it wrote: {server: analysis, or {"error": why}}."""
        if not self.recordings:  # never started (the scenario failed before its window)
            return {}
        if not self.stopped:
            self.stop()
        texts: dict[str, list[str]] = {}
        errors: dict[str, str] = {}
        sample_errors: dict[str, int] = {}
        for recording in self.recordings:
            process = recording.process
            if process is not None:
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    recording.error = f"py-spy did not stop within {STOP_TIMEOUT:g} s after SIGINT"
            output = recording.log.read_text(errors="replace") if recording.log.exists() else ""
            if recording.error is None and (not recording.path.exists() or recording.path.stat().st_size == 0):
                lines = [line for line in output.splitlines() if line.strip() and not line.startswith(" ")]
                why = next((line for line in lines if line.startswith("Error")), lines[-1] if lines else "")
                code = process.returncode if process is not None else None
                recording.error = f"py-spy wrote no samples (exit {code}): {why[:200] or 'no message'}"
            if recording.error:
                errors[recording.server] = recording.error
                continue
            recording.log.unlink(missing_ok=True)
            texts.setdefault(recording.server, []).append(recording.path.read_text(errors="replace"))
            if found := re.search(r"Errors: (\d+)", output):  # stacks py-spy could not read consistently
                sample_errors[recording.server] = sample_errors.get(recording.server, 0) + int(found.group(1))
        seconds = max(self.stopped - self.started, 1e-9)
        result = {}
        for server in self.servers:
            if server in errors:
                result[server] = {"error": errors[server]}
                continue
            analysis = analyse("\n".join(texts.get(server, [])))
            files = [recording.path for recording in self.recordings if recording.server == server]
            analysis["files"] = [display(path) for path in files]
            analysis["seconds"] = round(seconds, 2)
            analysis["samples_per_second"] = round(analysis["samples"] / seconds, 1)
            analysis["py_spy_errors"] = sample_errors.get(server, 0)
            result[server] = analysis
        return result


@dataclass
class Profiler:
    """Makes a Session per scenario; `prefix` tells the large database's runs (--scale) apart."""

    out: Path
    cores: set[int]
    rate: int = RATE
    prefix: str = ""

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)

    def session(self, key: str, servers: dict[str, list[int]]) -> Session:
        return Session(self, self.prefix + key, servers)

    @staticmethod
    def describe() -> str:
        binary = py_spy_binary()
        version = ""
        if binary:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return f"{version.strip() or 'py-spy (not found)'} record --format raw --rate {RATE} --nonblocking"
