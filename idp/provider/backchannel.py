"""OpenID Connect Back-Channel Logout 1.0: signed logout tokens, posted to each client.

At sign-out the IdP posts to every client of the session at once, waiting at most
BACKCHANNEL_LOGOUT["WAIT_SECONDS"] in all, so the person's page never hangs on a slow client.
A delivery that fails or is still running then is queued (RQ, on the Redis already there)
for the worker process (`manage.py backchannel_worker`) to retry with backoff for a bounded
time. Each attempt signs a fresh token (new `jti`, `iat`): a retry is never a replay.
Jobs are stored as JSON (RQ's JSONSerializer), not RQ's default pickle: whoever can write to
the shared Redis must not be able to make the worker run code.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

import requests
from django.conf import settings
from django.db import close_old_connections
from jwcrypto import jwt
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from rq import Callback, Queue, Retry
from rq.serializers import JSONSerializer

from ops.backchannel import retry_delivered, retry_failed
from ops.metrics import backchannel_delivery_counted
from provider.models import LoginSession
from provider.redis_health import redis_deployment
from provider.selectors import account_for
from provider.signing import key_id, signing_key, signing_pem
from sso_client.logs import request_id_headers

logger = logging.getLogger(__name__)

#: The `events` member that makes a JWT a logout token (spec section 2.4).
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
QUEUE_NAME = "backchannel-logout"
#: How long a logout token is valid (its `exp`); each delivery attempt signs a new one.
LOGOUT_TOKEN_SECONDS = 120


class DeliveryFailed(Exception):
    pass


def logout_token(application, login_session: LoginSession) -> str:
    """A signed logout token for `application` about `login_session` (spec section 2.4)."""
    now = int(time.time())
    claims = {
        "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        "aud": application.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_SECONDS,
        "jti": str(uuid.uuid4()),
        "sub": str(account_for(login_session.user).sub),
        "sid": login_session.sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    token = jwt.JWT(
        header=json.dumps({"alg": "RS256", "typ": "logout+jwt", "kid": key_id(signing_pem())}),
        claims=json.dumps(claims),
    )
    token.make_signed_token(signing_key())  # parsed once per process (provider.signing)
    return token.serialize()


def prepare(application_id: int, sid: str) -> tuple[str, str, str]:
    """(client id, back-channel URI, a freshly signed logout token) of one delivery."""
    application = get_application_model().objects.select_related("logout_settings").get(pk=application_id)
    login_session = LoginSession.objects.select_related("user").get(sid=sid)
    uri = application.logout_settings.backchannel_logout_uri
    return application.client_id, uri, logout_token(application, login_session)


def post(client_id: str, uri: str, token: str) -> None:
    """Post one logout token; raise DeliveryFailed unless the client answers 200 or 204."""
    try:
        response = requests.post(
            uri,
            data={"logout_token": token},
            headers=request_id_headers(),  # the sign-out's request id, in the client's log too
            timeout=settings.BACKCHANNEL_LOGOUT["REQUEST_TIMEOUT_SECONDS"],
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise DeliveryFailed(f"{client_id}: {type(error).__name__}") from None
    if response.status_code not in (200, 204):
        raise DeliveryFailed(f"{client_id}: HTTP {response.status_code}")
    logger.info("Back-channel logout delivered to %s", client_id)


def deliver(application_id: int, sid: str) -> None:
    """The worker's job: one attempt, with a new token; RQ retries it while it raises."""
    close_old_connections()
    post(*prepare(application_id, sid))


def queue() -> Queue:
    """The retry queue; the worker must read it with the same (JSON) serializer."""
    return Queue(QUEUE_NAME, connection=redis_deployment().client(), serializer=JSONSerializer)


def enqueue_retry(application_id: int, sid: str) -> None:
    intervals = settings.BACKCHANNEL_LOGOUT["RETRY_INTERVALS"]
    queue().enqueue(
        deliver,
        application_id,
        sid,
        retry=Retry(max=len(intervals), interval=intervals),
        job_timeout=60,
        failure_ttl=7 * 24 * 3600,
        on_success=Callback(retry_delivered),  # counted for /-/metrics (ops.backchannel)
        on_failure=Callback(retry_failed),
    )


def notify(deliveries: list[tuple[int, str]]) -> None:
    """Deliver at once and in parallel, within the wait bound; queue the rest for retries."""
    if not deliveries:
        return
    prepared = [prepare(*delivery) for delivery in deliveries]  # database work stays in this thread
    pool = ThreadPoolExecutor(max_workers=min(len(prepared), 8), thread_name_prefix="backchannel")
    # Each attempt runs in the sign-out's context (its request id, for the header and the log lines).
    futures = {
        pool.submit(contextvars.copy_context().run, post, *attempt): delivery
        for attempt, delivery in zip(prepared, deliveries, strict=True)
    }
    done, _ = wait(futures, timeout=settings.BACKCHANNEL_LOGOUT["WAIT_SECONDS"])
    pool.shutdown(wait=False)  # a slow client's attempt finishes on its own; its retry is queued
    for future, delivery in futures.items():
        if future in done and future.exception() is None:
            backchannel_delivery_counted("delivered")
            continue
        reason = future.exception() if future in done else "no answer in time"
        logger.warning("Back-channel logout queued for retry (%s)", reason)
        enqueue_retry(*delivery)
        backchannel_delivery_counted("queued")
