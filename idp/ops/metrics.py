"""The IdP's own counters: sign-ins, token grants, login sessions ended, back-channel deliveries.

Every label here takes its values from a small fixed set: never a username, a client id or
anything else a client sends, so no one can grow the number of series. Under gunicorn each worker
writes its counters to files in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py) and `/-/metrics` adds
them up (ops.views). The back-channel worker's retries are counted in Redis instead, and the
deliveries not made yet are read from the database per application (ops.backchannel).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog
from django.http import HttpResponse
from prometheus_client import Counter

log = structlog.get_logger(__name__)

SIGN_IN_OUTCOMES = ("succeeded", "failed", "locked_out")
#: The grant types the token endpoint serves (provider.token_endpoints.GRANT_TYPES); the rest is "other".
GRANT_TYPES = ("authorization_code", "refresh_token")
#: RFC 6749 section 5.2's error codes, and the two a server may add; anything else is "other".
TOKEN_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
)
DELIVERY_OUTCOMES = ("delivered", "queued")

SIGN_INS = Counter(
    "idp_sign_ins",
    "Sign-in attempts at the IdP by outcome: succeeded, failed (wrong credentials or code), "
    "locked_out (answered with the lock-out page).",
    ["outcome"],
)
LOCKOUTS = Counter("idp_lockouts", "Lock-outs begun: an account or an address reached its failure limit.")
TOKEN_GRANTS = Counter(
    "idp_token_grants",
    "Token endpoint answers by grant type and outcome (ok, or the OAuth error code).",
    ["grant_type", "outcome"],
)
LOGIN_SESSIONS_ENDED = Counter(
    "idp_login_sessions_ended",
    "IdP login sessions ended: signed out at a site or at the IdP, or by an administrator.",
)
BACKCHANNEL_DELIVERIES = Counter(
    "idp_backchannel_logout_deliveries",
    "Back-channel logout tokens at sign-out: delivered at once, or queued for the worker (its retries, "
    "and every delivery of an administrator's sign-out).",
    ["outcome"],
)

# Every series exists from start-up, at zero, so that rates and alerts see the first event.
for _outcome in SIGN_IN_OUTCOMES:
    SIGN_INS.labels(outcome=_outcome)
for _grant_type in (*GRANT_TYPES, "other"):
    for _outcome in ("ok", *TOKEN_ERRORS, "other"):
        TOKEN_GRANTS.labels(grant_type=_grant_type, outcome=_outcome)
for _outcome in DELIVERY_OUTCOMES:
    BACKCHANNEL_DELIVERIES.labels(outcome=_outcome)


def sign_in_counted(outcome: str) -> None:
    SIGN_INS.labels(outcome=outcome).inc()


def token_grant_counted(grant_types: Sequence[str], response: HttpResponse) -> None:
    """Count one answer of the token endpoint, and log it (grant type and outcome, nothing else)."""
    grant_type = grant_types[0] if len(grant_types) == 1 and grant_types[0] in GRANT_TYPES else "other"
    outcome = "ok" if response.status_code == 200 else token_error(response)
    TOKEN_GRANTS.labels(grant_type=grant_type, outcome=outcome).inc()
    log.info("token_grant", grant_type=grant_type, outcome=outcome)


def token_error(response: HttpResponse) -> str:
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return "other"
    return error if error in TOKEN_ERRORS else "other"


def login_session_ended(count: int = 1) -> None:
    """`count` login sessions ended (an administrator's sign-out ends many at once)."""
    LOGIN_SESSIONS_ENDED.inc(count)
    log.info("login_session_ended", **({"count": count} if count != 1 else {}))


def backchannel_delivery_counted(outcome: str, amount: int = 1) -> None:
    BACKCHANNEL_DELIVERIES.labels(outcome=outcome).inc(amount)
