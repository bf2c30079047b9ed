"""Single-request scenarios under wrk: a Lua script per scenario, results as JSON from its done().

Secrets (cookies, tokens, client credentials) reach the Lua scripts through environment
variables and a private file, never wrk's command line. Every script tallies the HTTP statuses
in response() (which costs wrk some speed) and prints, from done(), one line
`BENCH_JSON {...}` with the request count, duration, latency percentiles and statuses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

COMMON_LUA = r"""
threads = {}
statuses = {}
exhausted = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

function tally(status)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged, spent = {}, 0
  for _, thread in ipairs(threads) do
    for key, value in pairs(thread:get("statuses")) do merged[key] = (merged[key] or 0) + value end
    spent = spent + (thread:get("exhausted") or 0)
  end
  local parts = {}
  for key, value in pairs(merged) do table.insert(parts, string.format('"%s": %d', key, value)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"exhausted": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, spent, table.concat(parts, ", ")))
end
"""

#: GET with optional headers from the environment (a session cookie, a bearer token).
GET_LUA = r"""
function init(args)
  local headers = {}
  local cookie, bearer = os.getenv("BENCH_COOKIE"), os.getenv("BENCH_BEARER")
  if cookie and cookie ~= "" then headers["Cookie"] = cookie end
  if bearer and bearer ~= "" then headers["Authorization"] = "Bearer " .. bearer end
  local accept = os.getenv("BENCH_ACCEPT")
  if accept and accept ~= "" then headers["Accept"] = accept end
  prepared = wrk.format("GET", wrk.path, headers)
end

function request() return prepared end

function response(status, headers, body) tally(status) end
"""

#: A form POST with HTTP Basic client authentication, the same body each time (introspection).
POST_LUA = r"""
function init(args)
  local headers = {
    ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  prepared = wrk.format("POST", wrk.path, headers, os.getenv("BENCH_BODY"))
end

function request() return prepared end

function response(status, headers, body) tally(status) end
"""

#: Refresh grants with rotation: each connection's chain presents the refresh token its last
#: answer gave (wrk runs response() before the connection's next request()), so every request
#: carries a token never used before. A chain that breaks (an error) takes a spare token from
#: the thread's share of BENCH_TOKENS_FILE; with none left, the request is sent with a bogus
#: token (the IdP answers 400) and counted in `exhausted`.
REFRESH_LUA = r"""
function init(args)
  headers = {
    ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  queue = {}
  local count = tonumber(os.getenv("BENCH_THREADS"))
  local line_number = 0
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    if line ~= "" and line_number % count == thread_index - 1 then table.insert(queue, line) end
    line_number = line_number + 1
  end
end

function request()
  local token = table.remove(queue)
  if token == nil then
    exhausted = exhausted + 1
    token = "exhausted"
  end
  return wrk.format("POST", wrk.path, headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  tally(status)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then table.insert(queue, token) end
  end
end
"""

SCRIPTS = {"get": GET_LUA, "post": POST_LUA, "refresh": REFRESH_LUA}


class WrkMissing(RuntimeError):
    pass


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise WrkMissing(
            "wrk is not installed: `make bench` installs Debian's wrk with apt-get when run as root or with "
            "sudo; otherwise install it (apt-get install wrk) and run again."
        )
    return found


@dataclass
class WrkRun:
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    exhausted: int
    generator_cpu_seconds: float
    raw: dict = field(repr=False, default_factory=dict)


def run_wrk(
    url: str,
    *,
    script: str,
    seconds: float,
    connections: int,
    threads: int,
    cores: set[int],
    workdir: Path,
    env: dict[str, str] | None = None,
) -> WrkRun:
    """Run wrk once against `url` with one of SCRIPTS; returns what its done() printed.

    wrk runs pinned to `cores`; its CPU time (user + system) comes from the kernel's rusage of
    the finished child.
    """
    lua = workdir / f"{script}.lua"
    lua.write_text(COMMON_LUA + SCRIPTS[script])
    out = workdir / "wrk.out"
    args = [
        "taskset",
        "-c",
        ",".join(map(str, sorted(cores))),
        wrk_binary(),
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
    ]
    run_env = {**os.environ, **(env or {}), "BENCH_THREADS": str(threads)}
    with out.open("wb") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env=run_env)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text(errors="replace")
    line = next((line for line in text.splitlines() if line.startswith("BENCH_JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}):\n{text[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkRun(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        latency_ms={key: raw[f"{key}_us"] / 1000 for key in ("p50", "p90", "p95", "p99", "max", "mean")},
        statuses=raw["statuses"],
        socket_errors={key: value for key, value in raw["errors"].items() if key != "status" and value},
        exhausted=raw["exhausted"],
        generator_cpu_seconds=usage.ru_utime + usage.ru_stime,
        raw=raw,
    )
