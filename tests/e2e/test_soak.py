"""The short soak: a few dozen people making whole journeys while every fault is injected.

The soak harness (soak/, `make soak` runs the long one) starts its own redis-server (with the
append-only file, as in production), its own PostgreSQL databases, the IdP, both sites, the
worker and the slow proxy in front of the IdP, then lets SHORT's people sign in at A, open B,
view pages (short-lived tokens: the sites refresh them often), sign out at a random site and sign
in again, while Redis is killed, the IdP is killed, site B is killed during single logouts, the
IdP turns slow and PostgreSQL restarts. It must take them all:

- nothing unexpected: a readable 503 page during the matching outage is expected, a 500 never
  is, and nobody is signed out without signing out (soak/classify.py says exactly what counts);
- every recovery within its allowed bound, and every fault's checks (soak/bounds.py, soak/faults/);
- nothing lost: the IdP's people, applications, and the grants and tokens no journey may touch,
  identical before and after each fault (soak/ledger.py).

About 80 seconds of soak after half a minute of start-up. The report (JSON and Markdown) is
written to the test's temporary directory, its path printed; on failure the assertion lists
what went wrong, each with the request, the fault window, the status and the page's first line.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from soak.run import Options, run_soak

#: A few dozen people; short-lived tokens (refreshed 7 s before they expire, 5 s after sign-in),
#: so that the IdP's faults span a refresh and an expiry within seconds.
SHORT = {
    "people": 36,
    "duration": 60.0,
    "warmup": 5.0,
    "think": (1.0, 3.0),
    "pages": (3, 8),
    "access_token_seconds": 12,
    "refresh_margin_seconds": 7,
}


def what_went_wrong(result: dict) -> str:
    lines = [f"report: {', '.join(result['paths'])}"]
    for kind, entry in result["unexpected"].items():
        lines.append(f"{kind}: {entry['count']}")
        lines += [f"    {example}" for example in entry["examples"][:3]]
    return "\n".join(lines)


def test_a_few_dozen_people_ride_out_every_fault(tmp_path):
    # In a thread of its own: the session's Chromium (Playwright's sync API) keeps an event loop
    # running in this one, and the soak's driver runs one of its own.
    with ThreadPoolExecutor(max_workers=1) as thread:
        result = thread.submit(run_soak, Options(**SHORT, out=tmp_path / "soak")).result()
    print("\n".join(f"soak report: {path}" for path in result["paths"]))
    faults = {fault["name"]: fault for fault in result["faults"]}
    assert set(faults) == {"redis", "idp", "site", "slow_idp", "postgres"}

    assert result["totals"]["unexpected"] == 0, what_went_wrong(result)
    for fault in faults.values():
        if fault["skipped"]:  # only PostgreSQL's, when the soak runs on SQLite
            continue
        failed = [f"{check['what']}: {check['detail']}" for check in fault["checks"] if not check["passed"]]
        assert not failed, f"{fault['label']}: {failed}"
        assert fault["met_allowed"], (
            f"{fault['label']}: recovered in {fault['recovery_seconds']}s, allowed {fault['bound']['allowed']}s"
        )
        assert fault["ledger"]["identical"], f"{fault['label']} lost or changed data: {fault['ledger']}"
    for when, comparison in result["ledger"].items():
        assert comparison["identical"], f"{when}: {comparison}"
    assert result["totals"]["journeys"].get("journeys completed", 0) >= SHORT["people"], "people made whole journeys"
    assert result["passed"]
