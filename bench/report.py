"""The report: targets met or missed, a Markdown table, the JSON of everything, a PNG chart."""

from __future__ import annotations

import json
import math
from pathlib import Path

#: Published figures printed beside ours (their own hardware and set-ups; for orientation only).
REFERENCES = {
    "signin": "Keycloak 26: 15 sign-ins/s per vCPU",
    "refresh": "Keycloak 26: 120 refresh grants/s per vCPU",
    "introspect": "Ory Hydra: ~2,500 introspections/s per CPU",
}
REDIS_TARGET_BYTES = 2500  # "2.5 KB per person", read strictly (2,500 bytes, not 2,560)
SCALE_TOLERANCE = 0.15


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"


def judge(value: float | None, target: float, *, at_least: bool, unit: str) -> dict:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {"met": False, "text": f"missed: not measured (target {target:g} {unit})"}
    met = value >= target if at_least else value <= target
    ratio = value / target if target else float("inf")
    if met:
        return {"met": True, "text": f"met ({number(value)} vs {'≥' if at_least else '≤'} {number(target)} {unit})"}
    if at_least:
        return {
            "met": False,
            "text": f"MISSED by {(1 - ratio) * 100:.0f}% ({number(value)} vs ≥ {number(target)} {unit})",
        }
    return {"met": False, "text": f"MISSED by {(ratio - 1) * 100:.0f}% ({number(value)} vs ≤ {number(target)} {unit})"}


def targets(rows: dict[str, dict], memory: dict | None) -> list[dict]:
    """Each target of the issue, with the measured value: met or missed, and by how much."""
    checks = []

    def add(name: str, verdict: dict) -> None:
        checks.append({"target": name, **verdict})

    if row := rows.get("signin"):
        add("password sign-in ≥ 30 flows/s per core", judge(row["per_server_core"], 30, at_least=True, unit="flows/s"))
    if row := rows.get("refresh"):
        add("refresh ≥ 300/s per core", judge(row["per_server_core"], 300, at_least=True, unit="/s"))
    for key, label in (("userinfo", "userinfo"), ("introspect", "introspection")):
        if row := rows.get(key):
            add(f"{label} ≥ 1,500/s per core", judge(row["per_server_core"], 1500, at_least=True, unit="/s"))
    if row := rows.get("page_sso"):
        add("sso_client page cost ≤ 10%", judge(row.get("sso_client_cost_percent"), 10, at_least=False, unit="%"))
    if row := rows.get("sso_hop"):
        add("SSO hop ≤ 3 redirects", judge(row.get("redirects"), 3, at_least=False, unit="redirects"))
        add(
            "SSO hop: 1 server-to-server call",
            judge(row.get("server_to_server_calls"), 1, at_least=False, unit="calls"),
        )
        add(
            "SSO hop p50 ≤ 15 ms (concurrency 1)", judge(row.get("p50_ms_concurrency_1"), 15, at_least=False, unit="ms")
        )
    if memory:
        # The larger of the two: used_memory counts Redis's own overhead too, but with few people
        # signed in its growth is noise (it can even shrink); the keys' MEMORY USAGE is exact.
        per_person = max(memory.get("used_memory_per_person_bytes") or 0, memory.get("key_bytes_per_person") or 0)
        add("Redis ≤ 2.5 KB per signed-in person", judge(per_person, REDIS_TARGET_BYTES, at_least=False, unit="B"))
    return checks


def errors_text(row: dict) -> str:
    bad = row.get("not_2xx_3xx") or {}
    return ", ".join(f"{status}: {count}" for status, count in bad.items()) or "0"


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def markdown(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"# make bench — {result['started']}",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores; Python {machine['python']}, "
        f"Django {machine['django']}; commit {machine['commit'][:12]}.",
        f"Database: **{result['database']}**"
        + (
            " (shared_buffers 1 GB; durability off, as devstack runs its private servers: fsync, full-page"
            " writes and synchronous commit; a commit waits for no disk)"
            if "private server" in result["database"]
            else ""
        )
        + f". Redis: private redis-server {result['redis_version']}, nothing kept on disk. DEBUG off.",
        f"Servers: {result['server_layout']}. Load generator: {result['generator_layout']}.",
        f"{result['connections']} connections, {result['warmup']:g} s warm-up discarded, "
        f"{result['seconds']:g} s measured per scenario.",
        "",
        "| Scenario | Per server core | p50 ms | p95 ms | p99 ms | Server CPU ms/op (worker + redis/pg) "
        "| Not 2xx/3xx | Generator CPU |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["scenarios"]:
        latency = row["latency_ms"]
        generator = f"{fmt(row['generator_cpu_percent'], 0)}%" + (" ⚠ saturated" if row["generator_saturated"] else "")
        cpu = f"{fmt(row['server_cpu_ms_per_op'], 2)} + {fmt(row['backing_cpu_ms_per_op'], 2)}"
        lines.append(
            f"| {row['scenario']} | {fmt(row['per_server_core'])} {row['unit']} | {fmt(latency['p50'], 2)} "
            f"| {fmt(latency['p95'], 2)} | {fmt(latency['p99'], 2)} | {cpu} | {errors_text(row)} | {generator} |"
        )
    lines += ["", "## Targets", "", "| Target | Result |", "|---|---|"]
    for check in result["targets"]:
        lines.append(f"| {check['target']} | {'✅' if check['met'] else '❌'} {check['text']} |")
    rows = {row["key"]: row for row in result["scenarios"]}
    details = []
    if row := rows.get("sso_hop"):
        details.append(
            f"- SSO hop: {row.get('redirects')} redirects, {row.get('server_to_server_calls')} server-to-server "
            f"calls per hop, p50 {fmt(row.get('p50_ms_concurrency_1'), 2)} ms at concurrency 1; IdP requests "
            f"by path at concurrency 1: {row.get('idp_requests_by_path_at_concurrency_1')}."
        )
    if row := rows.get("page_sso"):
        details.append(
            f"- sso_client's cost on a signed-in page: {fmt(row.get('sso_client_cost_percent'))}% in throughput, "
            f"{fmt(row.get('sso_client_cpu_cost_percent'))}% in the worker's CPU per request."
        )
    for sites in (2, 20):
        if row := rows.get(f"fanout{sites}"):
            delivered = row["all_delivered_ms"]
            details.append(
                f"- Fan-out to {sites} sites: {row['operations']} sign-outs one at a time; sign-out answered in "
                f"p50 {fmt(row['latency_ms']['p50'], 1)} ms, every logout token received by p50 "
                f"{fmt(delivered['p50'], 1)} ms / p99 {fmt(delivered['p99'], 1)} ms after the sign-out began."
            )
    for key, reference in REFERENCES.items():
        if row := rows.get(key):
            details.append(
                f"- {row['scenario']}: {fmt(row['per_server_core'])} {row['unit']} per core here; {reference}."
            )
    for row in result["scenarios"]:
        for note in row.get("notes") or []:
            details.append(f"- {row['scenario']}: {note}.")
    if details:
        lines += ["", "## Details", "", *details]
    lines += where_the_time_goes(result)
    if memory := result.get("redis_memory"):
        lines += [
            "",
            f"## Redis memory per signed-in person ({memory['people']:,} people, at the IdP and both sites)",
            "",
            f"used_memory grew {memory['used_memory_growth_bytes']:,} B: "
            f"**{memory['used_memory_per_person_bytes']:,} B "
            f"per person**; the new keys' MEMORY USAGE adds up to {memory['key_bytes_per_person']:,} B per person.",
            "",
            "| Key kind | Keys | Bytes per person | Bytes per key |",
            "|---|---:|---:|---:|",
        ]
        for kind, values in memory["by_kind"].items():
            lines.append(
                f"| `{kind}` | {values['keys']:,} | {values['bytes_per_person']:,} | {values['bytes_per_key']:,} |"
            )
    if rss := result.get("rss_mib"):
        lines += ["", "## Server processes (RSS, MiB)", "", "| Server | Master | Worker(s) |", "|---|---:|---:|"]
        for name, values in rss.items():
            lines.append(f"| {name} | {values['master_rss_mib']} | {values['worker_rss_mib']} |")
    if scale := result.get("scale"):
        lines += [
            "",
            f"## Large database ({scale['seeded']})",
            "",
            "| Scenario | Small DB per core | Large DB per core | Ratio | Small p99 ms | Large p99 ms | Within 15% |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for item in scale["comparison"]:
            lines.append(
                f"| {item['scenario']} | {fmt(item['small'])} | {fmt(item['large'])} | {fmt(item['ratio'], 2)} "
                f"| {fmt(item['small_p99'], 1)} | {fmt(item['large_p99'], 1)} "
                f"| {'✅' if item['met'] else '❌ MISSED'} |"
            )
        if scale.get("redis_memory"):
            memory = scale["redis_memory"]
            lines.append("")
            lines.append(
                f"Redis with {memory['people']:,} people signed in: {memory['used_memory_per_person_bytes']:,} B per "
                f"person (used_memory), {memory['key_bytes_per_person']:,} B per person in keys."
            )
    if result.get("problems"):
        lines += ["", "## Problems", "", *(f"- {problem}" for problem in result["problems"])]
    return "\n".join(lines) + "\n"


PROFILE_COLUMN_PERCENT = 2.0  # a category gets a column when it reaches this share in some profile
PROFILE_TOP_LISTED = 5  # functions listed per profile in the Markdown (the JSON has 15)


def where_the_time_goes(result: dict) -> list[str]:
    """--profile: one row per (scenario, server) profiled, the main categories as columns."""
    if not result.get("profile"):
        return []
    from bench.profile import CATEGORY_NAMES, SHORT, WAITING

    rows = [("", row) for row in result["scenarios"]]
    if scale := result.get("scale"):
        rows += [("large database: ", row) for row in scale["scenarios"]]
    profiles = [
        (f"{label}{row['scenario']}", server, analysis)
        for label, row in rows
        for server, analysis in (row.get("profile") or {}).items()
    ]
    lines = [
        "",
        "## Where the time goes",
        "",
        f"`{result['profile']['tool']}` on each server worker the scenario loads, during its measured window; "
        f"{result['profile']['note']}. py-spy skips the moments the worker is idle (blocked in select() between "
        "requests), so fewer samples per second than its rate means idle time. Share of the samples (%) by "
        "category: each sample counts for its "
        "innermost frame that a rule of bench/profile.py's CATEGORIES matches. Columns starting with "
        '"wait:" are the worker waiting (on the client closing, the next connection, another server), not CPU. '
        "Collapsed stacks: bench/results/profiles/<scenario>-<server>.txt.",
        "",
    ]
    good = [(name, server, analysis) for name, server, analysis in profiles if "error" not in analysis]
    columns = [
        category
        for category in [*(name for name in CATEGORY_NAMES if name not in WAITING), *WAITING]  # CPU first
        if any(analysis["categories_percent"].get(category, 0) >= PROFILE_COLUMN_PERCENT for *_, analysis in good)
    ]
    if good:
        lines += [
            "| Scenario | Server | Samples | " + " | ".join(SHORT[column] for column in columns) + " | rest |",
            "|---|---|---:|" + "---:|" * (len(columns) + 1),
        ]
        for name, server, analysis in good:
            shares = analysis["categories_percent"]
            rest = sum(share for category, share in shares.items() if category not in columns)
            cells = [fmt(shares.get(column), 1) if shares.get(column) else "·" for column in columns]
            lines.append(f"| {name} | {server} | {analysis['samples']:,} | " + " | ".join(cells) + f" | {fmt(rest)} |")
        lines += ["", "Full category names: " + "; ".join(f"{SHORT[column]} = {column}" for column in columns) + "."]
        lines += [
            "",
            f"Top {PROFILE_TOP_LISTED} (the JSON has 15): product functions by inclusive share; all by self share:",
        ]
        for name, server, analysis in good:
            product = ", ".join(
                f"`{item['function']}` {fmt(item['percent'])}%"
                for item in analysis["top_product_inclusive_percent"][:PROFILE_TOP_LISTED]
            )
            own = ", ".join(
                f"`{item['function']}` {fmt(item['percent'])}%"
                for item in analysis["top_self_percent"][:PROFILE_TOP_LISTED]
            )
            waiting = sum(analysis["categories_percent"].get(category, 0) for category in WAITING)
            lines.append(
                f"- {name}, {server} ({analysis['samples_per_second']:g} samples/s over {analysis['seconds']:g} s, "
                f"{fmt(waiting)}% waiting; {analysis.get('py_spy_errors', 0):,} more samples py-spy could not read, "
                f"non-blocking): product (inclusive): {product or 'none'}; self: {own or 'none'}."
            )
    for name, server, analysis in profiles:
        if "error" in analysis:
            lines.append(f"- {name}, {server}: not profiled: {analysis['error']}.")
    for label, row in rows:
        if row.get("profile_skipped"):
            lines.append(f"- {label}{row['scenario']}: not profiled: {row['profile_skipped']}.")
    return lines


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in result["scenarios"] if row["operations"]]
    names = [row["scenario"] for row in rows][::-1]
    rates = [row["per_server_core"] for row in rows][::-1]
    p99 = [row["latency_ms"]["p99"] for row in rows][::-1]
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 0.5 * len(rows) + 2), sharey=True)
    left.barh(names, rates, color="#3b7dd8")
    left.set_xscale("log")
    left.set_xlabel("throughput per server core (requests, flows, hops or sign-outs per second; log)")
    for y, rate in enumerate(rates):
        left.text(rate, y, f" {rate:,.0f}", va="center", fontsize=8)
    right.barh(names, p99, color="#d8703b")
    right.set_xscale("log")
    right.set_xlabel("p99 latency, ms (log)")
    for y, value in enumerate(p99):
        right.text(value, y, f" {value:,.1f}", va="center", fontsize=8)
    figure.suptitle(f"make bench — {result['database']}, one sync gunicorn worker on one core")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(result: dict, out: Path) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["started"].replace(":", "").replace("-", "").replace(" ", "-")
    json_path = out / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2, default=str))
    md_path = out / "results.md"
    md_path.write_text(markdown(result))
    png_path = out / "results.png"
    chart(result, png_path)
    return json_path, md_path, png_path
