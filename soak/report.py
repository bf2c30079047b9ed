"""The soak's report: everything as JSON, and a Markdown summary a person reads first.

Nothing secret goes in: paths without query strings, page headings, request ids, row ids.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from bench.flows import percentiles

#: The metrics read from each part at the end (counts since that process last started).
METRICS = {
    "idp": ("idp_sign_ins_total", "idp_token_grants_total", "idp_backchannel_logout_deliveries_total"),
    "site_a": ("sso_client_token_refreshes_total", "sso_client_backchannel_logouts_total"),
    "site_b": ("sso_client_token_refreshes_total", "sso_client_backchannel_logouts_total"),
}
RETRIES = "idp_backchannel_logout_retries_total"


def scrape_metrics(services) -> dict:
    """The counters that show what the soak made the product do (refreshes, deliveries), by label."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict = {}
    for part, names in METRICS.items():
        try:
            text = httpx.get(f"{services.url(part)}/-/metrics", timeout=30, trust_env=False).text
        except httpx.HTTPError as error:
            found[part] = {"error": type(error).__name__}
            continue
        counts: dict = defaultdict(dict)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (*names, RETRIES):
                    label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) or "all"
                    counts[sample.name][label] = int(sample.value)
        found[part] = dict(counts)
    return found


def latency_table(answers, key) -> dict:
    groups = defaultdict(list)
    for answer in answers:
        if answer.status is not None:
            groups[key(answer)].append(answer.took * 1000)
    return {name: {"count": len(samples), **rounded(percentiles(samples))} for name, samples in sorted(groups.items())}


def rounded(values: dict) -> dict:
    return {name: (None if isinstance(v, float) and math.isnan(v) else round(v, 1)) for name, v in values.items()}


def assemble(outcome: dict, *, started: str, options, bounds: dict, machine: dict, wall_seconds: float, logs) -> dict:
    recorder, world, verdicts = outcome["recorder"], outcome["world"], outcome["verdicts"]
    answers = recorder.answers
    crowd = [answer for answer in answers if answer.role == "crowd"]
    faults = [fault.as_dict() for fault in outcome["faults"]]
    statuses = Counter(str(answer.status) if answer.status is not None else answer.error for answer in answers)
    passed = verdicts.unexpected_total == 0 and all(fault["passed"] for fault in faults)
    return {
        "started": started,
        "passed": passed,
        "options": {
            "people": options.people,
            "duration_seconds": options.duration,
            "faults": options.faults,
            "redis_append_only_file": options.aof,
            "think_seconds": list(options.think),
            "pages_per_journey": list(options.pages),
            "warmup_seconds": options.warmup,
            "seed": options.seed,
            "access_token_seconds": options.access_token_seconds,
            "refresh_margin_seconds": options.refresh_margin_seconds,
            "slow_idp_latency_seconds": options.slow_latency,
        },
        "bounds": bounds,
        "machine": machine,
        "database": outcome["database"],
        "redis_version": outcome["redis_version"],
        "setup_seconds": outcome["setup_seconds"],
        "wall_seconds": round(wall_seconds, 1),
        "load_generator": outcome["generator"],
        "totals": {
            "requests": len(answers),
            "requests_by_the_crowd": len(crowd),
            "journeys": dict(world.counts),
            "answers_ok": verdicts.ok,
            "answers_expected_under_faults": sum(verdicts.expected.values()),
            "unexpected": verdicts.unexpected_total,
            "statuses": dict(statuses.most_common()),
        },
        "unexpected": {
            kind: {"count": count, "examples": verdicts.examples[kind]}
            for kind, count in verdicts.unexpected.most_common()
        },
        "expected_under_faults": dict(verdicts.expected.most_common()),
        "events_expected": dict(verdicts.events_expected.most_common()),
        "latency_ms": {
            "all answers": rounded(percentiles([a.took * 1000 for a in answers if a.status is not None])),
            "by part": latency_table(answers, lambda a: a.part),
            "by step (each answer)": latency_table(crowd, lambda a: a.step),
        },
        "step_seconds": {
            name: {"count": len(samples), **rounded(percentiles(samples))}
            for name, samples in sorted(world.step_seconds.items())
        },
        "logout_propagation_seconds": {"count": len(world.propagation), **rounded(percentiles(world.propagation))},
        "faults": faults,
        "ledger": outcome["ledger"],
        "metrics": outcome["metrics"],
        "logs": [str(path) for path in logs],
    }


def dump_answers(recorder, directory: Path) -> Path:
    """Every answer and event, one JSON object a line (gzipped): paths, statuses, headings, request ids."""
    import gzip
    from dataclasses import asdict

    path = directory / "answers.jsonl.gz"
    with gzip.open(path, "wt") as out:
        for item in [*recorder.answers, *recorder.events]:
            out.write(json.dumps({"type": type(item).__name__.lower(), **asdict(item)}) + "\n")
    return path


def write(result: dict, out: Path, stamp: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"soak-{stamp}.json", out / f"soak-{stamp}.md"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path


def seconds(value) -> str:
    return "—" if value is None else f"{value:.1f} s"


def markdown(result: dict) -> str:
    o, t = result["options"], result["totals"]
    kinds = ", ".join(f"{kind}: {entry['count']}" for kind, entry in result["unexpected"].items()) or "none"
    lines = [
        f"# Soak report, {result['started']}",
        "",
        f"**{'PASSED' if result['passed'] else 'FAILED'}**: {t['unexpected']} unexpected ({kinds}).",
        "",
        "## The run",
        "",
        f"- {o['people']} virtual people for {o['duration_seconds']:.0f} s (pauses of {o['think_seconds'][0]:g} to "
        f"{o['think_seconds'][1]:g} s, {o['pages_per_journey'][0]} to {o['pages_per_journey'][1]} page views a "
        f"journey), faults: {', '.join(o['faults']) or 'none'}; seed {o['seed']}.",
        f"- Access tokens live {o['access_token_seconds']} s and are refreshed {o['refresh_margin_seconds']} s "
        f"before they expire; Redis's append-only file {'on' if o['redis_append_only_file'] else 'off'}.",
        f"- {result['database']}; redis-server {result['redis_version']}; {result['machine']['cores']} cores, "
        f"Python {result['machine']['python']}, Django {result['machine']['django']}.",
        f"- Set-up {result['setup_seconds']:.0f} s, whole run {result['wall_seconds']:.0f} s; the load generator "
        f"used {result['load_generator']['share_of_one_core']:.0%} of one core.",
        "",
        "## Totals",
        "",
        f"- Requests: {t['requests']:,} ({t['requests_by_the_crowd']:,} by the crowd, the rest by the faults' "
        "probes and the set-up).",
        f"- Journeys: {', '.join(f'{k} {v:,}' for k, v in sorted(t['journeys'].items())) or 'none'}.",
        f"- Answers: {t['answers_ok']:,} as expected in any case, {t['answers_expected_under_faults']:,} expected "
        f"only because a fault was on, {t['unexpected']:,} unexpected (answers and events).",
        f"- By status: {', '.join(f'{k} {v:,}' for k, v in t['statuses'].items())}.",
        f"- Sign-outs seen at the other site after: {fmt_percentiles(result['logout_propagation_seconds'], 's')}.",
    ]
    lines += metrics_lines(result["metrics"])
    lines += [
        "",
        "## Latency (ms)",
        "",
        "| answers | count | p50 | p90 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = {"all": {"count": t["requests"], **result["latency_ms"]["all answers"]}}
    rows.update({f"part: {k}": v for k, v in result["latency_ms"]["by part"].items()})
    rows.update({f"step: {k}": v for k, v in result["latency_ms"]["by step (each answer)"].items()})
    for name, row in rows.items():
        lines.append(f"| {name} | {row.get('count', '')} | {row['p50']} | {row['p90']} | {row['p99']} | {row['max']} |")
    lines += ["", "Steps as people saw them (seconds, retries included):", ""]
    for name, row in result["step_seconds"].items():
        lines.append(f"- {name}: {fmt_percentiles(row, 's')}")
    lines += faults_lines(result)
    lines += unexpected_lines(result)
    lines += ledger_lines(result)
    if result.get("logs"):
        lines += ["", f"Logs of the processes (each request's X-Request-ID is in them): {', '.join(result['logs'])}"]
    return "\n".join(lines) + "\n"


def fmt_percentiles(row: dict, unit: str) -> str:
    if not row.get("count"):
        return "none"
    return f"{row['count']}, p50 {row['p50']} {unit}, p90 {row['p90']} {unit}, max {row['max']} {unit}"


def metrics_lines(metrics: dict) -> list[str]:
    lines = []
    for part, families in metrics.items():
        for name, counts in families.items():
            if isinstance(counts, dict):
                shown = ", ".join(f"{label} {value:,}" for label, value in counts.items() if value) or "none"
                lines.append(f"- {part} `{name}` (since the process started): {shown}.")
    return lines


def faults_lines(result: dict) -> list[str]:
    lines = [
        "",
        "## Faults",
        "",
        "| fault | began at | lasted | recovery | target / allowed | checks | nothing lost |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for fault in result["faults"]:
        if fault["skipped"]:
            lines.append(f"| {fault['label']} | skipped: {fault['skipped']} | | | | | |")
            continue
        passed = sum(check["passed"] for check in fault["checks"])
        bound = fault["bound"]
        verdict = "met" if fault["met_target"] else ("within allowed" if fault["met_allowed"] else "**missed**")
        lines.append(
            f"| {fault['label']} | {fault['start']:.1f} s | {fault['hold_seconds']:.1f} s | "
            f"{seconds(fault['recovery_seconds'])} ({verdict}) | {bound['target']:g} / {bound['allowed']:g} s | "
            f"{passed}/{len(fault['checks'])} | {'yes' if fault['ledger'].get('identical') else '**no**'} |"
        )
    for fault in result["faults"]:
        if fault["skipped"]:
            continue
        lines += ["", f"### {fault['label']}", ""]
        for check in fault["checks"]:
            mark = "✓" if check["passed"] else "✗"
            detail = f" — {check['detail']}" if check["detail"] and not check["passed"] else ""
            lines.append(f"- {mark} {check['what']}{detail}")
        for name, value in fault["observations"].items():
            shown = json.dumps(value, default=str)
            lines.append(f"- {name}: {shown if len(shown) <= 300 else shown[:300] + '…'}")
    return lines


def unexpected_lines(result: dict) -> list[str]:
    lines = ["", "## Unexpected", ""]
    if not result["unexpected"]:
        lines.append("Nothing.")
    for kind, entry in result["unexpected"].items():
        lines += [f"### {kind}: {entry['count']}", ""]
        for example in entry["examples"][:8]:
            lines.append("- " + "; ".join(f"{k}: {v}" for k, v in example.items() if v not in (None, "", [])))
        lines.append("")
    lines += ["", "## Expected only because a fault was on", ""]
    expected = {**result["expected_under_faults"], **result["events_expected"]}
    lines += [f"- {reason}: {count:,}" for reason, count in expected.items()] or ["Nothing."]
    return lines


def ledger_lines(result: dict) -> list[str]:
    lines = ["", "## Nothing lost (soak/ledger.py says what is compared)", ""]
    comparisons = dict(result["ledger"])
    comparisons.update({fault["label"]: fault["ledger"] for fault in result["faults"] if fault.get("ledger")})
    for when, comparison in comparisons.items():
        if comparison.get("identical"):
            lines.append(f"- {when}: identical ({comparison['rows_compared']:,} rows compared), every invariant held.")
        else:
            lines.append(
                f"- {when}: **differences** {json.dumps(comparison['differences'])}; "
                f"invariants broken {json.dumps(comparison['invariants_broken'])}"
            )
    return lines
