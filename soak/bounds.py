"""Every bound the soak judges by, in one place: recovery times, answer times, and the faults' timings.

A bound has two numbers. `target` is what the product promises (issue 12, docs/reliability.md);
`allowed` is what the soak asserts, generous for a busy 2-core machine shared with other work.
The report shows both: a recovery between the two is met, and flagged as slower than promised.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bound:
    target: float  # seconds the product promises
    allowed: float  # seconds the soak accepts before it calls the bound missed


#: From the fault's end (the process or the server started again, the latency removed) until
#: every site serves normally: every readiness check answers 200, a new person signs in at A and
#: opens B, and (for the site killed) every back-channel logout that was waiting has ended the
#: person's session there. Measured by polling every POLL_SECONDS.
RECOVERY: dict[str, Bound] = {
    # "once it is back every site serves normally within 5 seconds, without a restart of theirs"
    "redis": Bound(target=5, allowed=15),
    # gunicorn's start-up (preloading Django) is part of it: the fault ends when the IdP is started.
    "idp": Bound(target=10, allowed=30),
    # the site's start-up, then the worker's retry (BACKCHANNEL_RETRY_INTERVALS) must land.
    "site": Bound(target=15, allowed=60),
    "slow_idp": Bound(target=5, allowed=15),
    "postgres": Bound(target=5, allowed=20),
}

#: Polling interval of every recovery and observation loop.
POLL_SECONDS = 0.25

#: The longest any answer of a client site may take, whatever is failing behind it. A site page
#: makes at most one call to the IdP (sso_client's HTTP_TIMEOUT_SECONDS, 5 s, for connecting and
#: again for reading), and may wait REFRESH_WAIT_SECONDS (10 s) for another request's refresh.
SITE_ANSWER_SECONDS = 20.0
#: The longest an answer of the IdP (through the proxy) may take, plus the proxy's added latency
#: while the slow-IdP fault is on.
IDP_ANSWER_SECONDS = 20.0
#: While the IdP is slow, a site page that needs no call to the IdP (the public /about/ page) must
#: answer within this much more than it did just before: the site's calls time out rather than tie
#: up every worker.
FREE_PAGE_SECONDS = 3.0
#: The driver's own timeout on any request: far past the bounds above, so that an answer that
#: breaks a bound is measured, not cut short. Hitting it is itself an unexpected error.
CLIENT_TIMEOUT_SECONDS = 60.0

#: After a sign-out has gone through the IdP, the other site must have ended the person's session
#: within this (delivered at once, or queued and retried by the worker).
LOGOUT_PROPAGATION_SECONDS = 20.0
#: A step that keeps failing (a fault is on) is retried for this long, then the journey is given up.
STEP_PATIENCE_SECONDS = 60.0
#: Answers that started this long after a fault's recovery still count as inside its window: they
#: were queued behind the outage.
WINDOW_GRACE_SECONDS = 2.0

#: The IdP's and sites' token lifetimes for the soak: short, so that refreshes are frequent. The
#: margin stays above sso_client's HTTP_TIMEOUT_SECONDS (5), so that a refresh that times out still
#: leaves a valid token to serve the page with. The short soak in `make test` uses 12 and 7.
ACCESS_TOKEN_SECONDS = 30
REFRESH_MARGIN_SECONDS = 10
#: The worker's retry backoff for back-channel logouts (seconds; about two minutes in all).
BACKCHANNEL_RETRY_INTERVALS = "1,1,2,2,3,3,5,5,10,10,20,30,30"

#: How long each fault lasts (its "hold"), unless the run's options say otherwise.
HOLD_SECONDS: dict[str, float] = {
    "redis": 4.0,
    "idp": 0.0,  # 0: the refresh margin + 2 s, so that it spans a refresh and then the token's expiry
    "site": 4.0,
    "slow_idp": 0.0,  # 0: as for "idp"
    "postgres": 8.0,  # past the sites' and the IdP's wait for a pooled connection (5 s)
}
#: The latency the slow-IdP proxy adds to each answer: above sso_client's HTTP_TIMEOUT_SECONDS (5).
SLOW_IDP_LATENCY_SECONDS = 8.0
