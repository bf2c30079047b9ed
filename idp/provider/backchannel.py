"""OpenID Connect Back-Channel Logout 1.0: signed logout tokens, posted to each client.

At sign-out the IdP posts to every client of the session at once, waiting at most
BACKCHANNEL_LOGOUT["WAIT_SECONDS"] in all, so the person's page never hangs on a slow client.
A delivery that fails or is still running then is queued (RQ, on the Redis already there)
for the worker process (`manage.py backchannel_worker`) to retry with backoff for a bounded
time. An administrator's "sign out everywhere" queues every delivery for the worker straight
away, a job per BATCH_SIZE of them, so that the admin's page answers at once whatever the
number of people. Each attempt signs a fresh token (new `jti`, `iat`): a retry is never a replay.

Every delivery left to the worker is also a row in the database (BackchannelDelivery): pending
until delivered, failed once the worker gives up, with its attempts and last error in plain
words. The admin lists them per application and queues them again ("retry now"); /-/metrics
counts them per application (ops.backchannel). A job acts only on the rows it owns (their
`job_id`: the job's id, or the one id all the jobs of an administrator's sign-out share), so a
delivery handed to a new job by "retry now" is never made twice by the old one.

Jobs are stored as JSON (RQ's JSONSerializer), not RQ's default pickle: whoever can write to
the shared Redis must not be able to make the worker run code.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus

import requests
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import CharField, DateTimeField, F, IntegerField, QuerySet, Value
from django.utils import timezone
from jwcrypto import jwt
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from rq import Queue, Retry, get_current_job
from rq.serializers import JSONSerializer

from ops.backchannel import count_retries
from ops.metrics import backchannel_delivery_counted
from provider.models import BackchannelDelivery, LoginSession
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
#: Deliveries per worker job, and how many of them a job posts at once.
BATCH_SIZE = 200
PARALLEL_POSTS = 8
#: How long RQ keeps a job that failed for good (its FailedJobRegistry); the database row stays.
FAILURE_TTL_SECONDS = 7 * 24 * 3600

Status = BackchannelDelivery.Status


class DeliveryFailed(Exception):
    """A client did not take a logout token; `reason` says why in plain words (no token, no sid)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


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


@dataclass(frozen=True)
class Prepared:
    """One delivery, ready to post: `attempt` is post()'s arguments (client id, URI, token)."""

    attempt: tuple[str, str, str]
    login_session_id: int


def prepared(application, login_session: LoginSession) -> Prepared:
    uri = application.logout_settings.backchannel_logout_uri
    return Prepared((application.client_id, uri, logout_token(application, login_session)), login_session.pk)


def prepare(application_id: int, sid: str) -> Prepared:
    """A delivery's client, back-channel URI and freshly signed logout token."""
    application = get_application_model().objects.select_related("logout_settings").get(pk=application_id)
    login_session = LoginSession.objects.select_related("user").get(sid=sid)
    return prepared(application, login_session)


def reason_of_error(error: requests.RequestException) -> str:
    """Why a request got no answer, as an operator would say it."""
    timeout = settings.BACKCHANNEL_LOGOUT["REQUEST_TIMEOUT_SECONDS"]
    if isinstance(error, requests.ConnectTimeout):
        return f"Could not connect within {timeout:g} seconds"
    if isinstance(error, requests.Timeout):
        return f"No answer within {timeout:g} seconds"
    if isinstance(error, requests.exceptions.SSLError):
        return "The secure connection (TLS) failed: check the site's certificate"
    if isinstance(error, requests.ConnectionError):
        return "Could not connect: the site is down or its address does not answer"
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return "The back-channel logout URI is not a URL the IdP can post to"
    return f"The request failed ({type(error).__name__})"


def reason_of_status(status: int) -> str:
    """Why an answer is not an acceptance (200 or 204), as an operator would say it."""
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    if 300 <= status < 400:
        return f"The site answered with a redirect (HTTP {status}): the back-channel logout URI must answer itself"
    if status == 400:
        return "The site refused the logout token (HTTP 400 Bad Request)"
    return f"The site answered HTTP {status}{phrase}"


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
        reason = reason_of_error(error)
        raise DeliveryFailed(f"{client_id}: {reason}", reason) from None
    if response.status_code not in (200, 204):
        reason = reason_of_status(response.status_code)
        raise DeliveryFailed(f"{client_id}: {reason}", reason)
    logger.info("Back-channel logout delivered to %s", client_id)


def reason_of(error: BaseException | None) -> str:
    if error is None:
        wait_seconds = settings.BACKCHANNEL_LOGOUT["WAIT_SECONDS"]
        return f"No answer within the sign-out's wait ({wait_seconds:g} seconds)"
    if isinstance(error, DeliveryFailed):
        return error.reason
    return f"The delivery failed ({type(error).__name__})"


# --- the queue --------------------------------------------------------------------------------------
def queue() -> Queue:
    """The retry queue; the worker must read it with the same (JSON) serializer."""
    return Queue(QUEUE_NAME, connection=redis_deployment().client(), serializer=JSONSerializer)


def new_job_id() -> str:
    return uuid.uuid4().hex


def retry_policy() -> Retry:
    intervals = settings.BACKCHANNEL_LOGOUT["RETRY_INTERVALS"]
    return Retry(max=len(intervals), interval=intervals)


def batch_job_timeout() -> int:
    """Long enough for a job to post its BATCH_SIZE deliveries to clients that all time out."""
    rounds = math.ceil(BATCH_SIZE / PARALLEL_POSTS)
    return int(rounds * 2 * settings.BACKCHANNEL_LOGOUT["REQUEST_TIMEOUT_SECONDS"]) + 60


def batch_job(deliveries: Sequence[tuple[int, str]], job_id: str, *, owner: str | None = None):
    """A worker job of `deliveries` (application id, sid), for `enqueue_jobs`; `owner`: the id
    their rows are recorded under, when it is not the job's own."""
    return Queue.prepare_data(
        deliver_batch,
        args=([[application_id, sid] for application_id, sid in deliveries],),
        kwargs={"owner": owner} if owner else None,
        job_id=job_id,
        timeout=batch_job_timeout(),
        failure_ttl=FAILURE_TTL_SECONDS,
        retry=retry_policy(),
    )


def enqueue_jobs(jobs: list) -> None:
    """Queue `jobs` (from `batch_job`) in one round trip to Redis."""
    if jobs:
        queue().enqueue_many(jobs)


def batched(items: Sequence, size: int = BATCH_SIZE) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def enqueue_retry(
    application_id: int, sid: str, *, reason: str = "", login_session_id: int | None = None, attempts: int = 1
) -> None:
    """Leave one delivery to the worker: a pending row (with the attempt just made), then its job."""
    if login_session_id is None:
        login_session_id = LoginSession.objects.values_list("pk", flat=True).get(sid=sid)
    job_id, now = new_job_id(), timezone.now()
    BackchannelDelivery.objects.bulk_create(
        [
            BackchannelDelivery(
                application_id=application_id,
                login_session_id=login_session_id,
                status=Status.PENDING,
                attempts=attempts,
                last_error=reason[:200],
                created=now,
                last_attempt=now if attempts else None,
                next_attempt=now,
                job_id=job_id,
            )
        ],
        update_conflicts=True,
        unique_fields=["application", "login_session"],
        update_fields=["status", "attempts", "last_error", "last_attempt", "next_attempt", "job_id"],
    )
    queue().enqueue(
        deliver,
        application_id,
        sid,
        job_id=job_id,
        retry=retry_policy(),
        job_timeout=60,
        failure_ttl=FAILURE_TTL_SECONDS,
    )


def notify(deliveries: list[tuple[int, str]]) -> None:
    """Deliver at once and in parallel, within the wait bound; queue the rest for retries."""
    if not deliveries:
        return
    ready = [prepare(*delivery) for delivery in deliveries]  # database work stays in this thread
    pool = ThreadPoolExecutor(max_workers=min(len(ready), PARALLEL_POSTS), thread_name_prefix="backchannel")
    # Each attempt runs in the sign-out's context (its request id, for the header and the log lines).
    futures = {
        pool.submit(contextvars.copy_context().run, post, *delivery_ready.attempt): (delivery, delivery_ready)
        for delivery, delivery_ready in zip(deliveries, ready, strict=True)
    }
    done, _ = wait(futures, timeout=settings.BACKCHANNEL_LOGOUT["WAIT_SECONDS"])
    pool.shutdown(wait=False)  # a slow client's attempt finishes on its own; its retry is queued
    for future, (delivery, delivery_ready) in futures.items():
        if future in done and future.exception() is None:
            backchannel_delivery_counted("delivered")
            continue
        error = future.exception() if future in done else None
        logger.warning("Back-channel logout queued for retry (%s)", error if error else "no answer in time")
        enqueue_retry(*delivery, reason=reason_of(error), login_session_id=delivery_ready.login_session_id)
        backchannel_delivery_counted("queued")


def record_for_the_worker(clients: QuerySet, deliveries: Sequence[tuple[int, str]]) -> list:
    """Record the deliveries to `clients` (LoginSessionClient rows; `deliveries` are the same, as
    (application id, sid)) as pending, and return their jobs, BATCH_SIZE deliveries each, for
    `enqueue_jobs` once the caller's transaction has committed (the worker must find the rows).

    One INSERT ... SELECT, whatever their number: the rows are owned by one id that all these
    jobs carry (`owner`).
    """
    if not deliveries:
        return []
    owner, now = new_job_id(), timezone.now()
    values = {
        "application_id": F("application_id"),
        "login_session_id": F("login_session_id"),
        "status": Value(Status.PENDING, output_field=CharField()),
        "attempts": Value(0, output_field=IntegerField()),
        "last_error": Value("", output_field=CharField()),
        "created": Value(now, output_field=DateTimeField()),
        "next_attempt": Value(now, output_field=DateTimeField()),
        "job_id": Value(owner, output_field=CharField()),
    }
    select = clients.annotate(**{f"new_{name}": value for name, value in values.items()}).values_list(
        *(f"new_{name}" for name in values)
    )
    sql, params = select.query.sql_with_params()
    connection = connections[clients.db]
    quote = connection.ops.quote_name
    table = quote(BackchannelDelivery._meta.db_table)
    columns = ", ".join(quote(BackchannelDelivery._meta.get_field(name).column) for name in values)
    with connection.cursor() as cursor:
        # A WHERE in the SELECT (there is one) keeps SQLite from reading ON CONFLICT as a join's.
        cursor.execute(f"INSERT INTO {table} ({columns}) {sql} ON CONFLICT DO NOTHING", params)
    backchannel_delivery_counted("queued", len(deliveries))
    return [batch_job(batch, new_job_id(), owner=owner) for batch in batched(list(deliveries))]


def retry_now(deliveries: QuerySet[BackchannelDelivery]) -> int:
    """Queue again, due now, every delivery `deliveries` selects that is not made yet (failed, or
    waiting out a backoff), with a full set of retries; returns how many.

    A fixed number of queries per BATCH_SIZE deliveries, and one round trip to Redis. A job that
    held one of them before finds it handed over and leaves it alone.
    """
    undelivered = list(deliveries.exclude(status=Status.DELIVERED).values_list("pk", flat=True))
    jobs, queued, now = [], 0, timezone.now()
    for batch in batched(undelivered):
        job_id = new_job_id()
        with transaction.atomic():
            BackchannelDelivery.objects.filter(pk__in=batch).exclude(status=Status.DELIVERED).update(
                status=Status.PENDING, next_attempt=now, job_id=job_id
            )
            pairs = list(
                BackchannelDelivery.objects.filter(pk__in=batch, job_id=job_id).values_list(
                    "application_id", "login_session__sid"
                )
            )
        if pairs:
            jobs.append(batch_job(pairs, job_id))
            queued += len(pairs)
    enqueue_jobs(jobs)
    return queued


# --- the worker's jobs ------------------------------------------------------------------------------
def deliver(application_id: int, sid: str) -> None:
    """The worker's job for one delivery a sign-out could not make (see deliver_batch).

    A job queued before deliveries were recorded has no row: it makes one, and goes on.
    """
    attempt([[application_id, sid]], adopt=True)


def deliver_batch(deliveries: list[list], owner: str | None = None) -> None:
    """The worker's job: one attempt at each of `deliveries` (application id, sid) that this job
    still owns (their rows' `job_id` is `owner`, or the job's own id), in parallel, each with a
    new token. Raises while any failed, so that RQ tries the job again after its backoff: the
    delivered ones are not posted again.
    """
    attempt(deliveries, adopt=False, owner=owner)


def attempt(deliveries: list[list], *, adopt: bool, owner: str | None = None) -> None:
    close_old_connections()
    job = get_current_job()
    owner = owner or (job.id if job is not None else None)
    rows = rows_to_attempt(deliveries, owner, adopt=adopt)
    if not rows:
        return  # delivered already, or handed to a newer job by "retry now"
    ready = [prepared(row.application, row.login_session) for row in rows]
    with ThreadPoolExecutor(max_workers=min(len(rows), PARALLEL_POSTS), thread_name_prefix="backchannel") as pool:
        futures = [pool.submit(post, *delivery_ready.attempt) for delivery_ready in ready]
    errors = [future.exception() for future in futures]

    now = timezone.now()
    retries_left = bool(job is not None and job.retries_left)
    mine = BackchannelDelivery.objects.filter(job_id=owner) if owner is not None else BackchannelDelivery.objects
    delivered = [row.pk for row, error in zip(rows, errors, strict=True) if error is None]
    if delivered:
        mine.filter(pk__in=delivered).update(
            status=Status.DELIVERED, attempts=F("attempts") + 1, last_error="", last_attempt=now, next_attempt=None
        )
    failed: dict[tuple[str, str], list[int]] = defaultdict(list)  # (client id, reason): rows
    for row, error in zip(rows, errors, strict=True):
        if error is not None:
            failed[(row.application.client_id, reason_of(error))].append(row.pk)
    next_attempt = now + timedelta(seconds=job.get_retry_interval()) if retries_left else None
    for (client_id, reason), pks in failed.items():
        mine.filter(pk__in=pks).update(
            status=Status.PENDING if retries_left else Status.FAILED,
            attempts=F("attempts") + 1,
            last_error=reason[:200],
            last_attempt=now,
            next_attempt=next_attempt,
        )
        logger.warning(
            "Back-channel logout to %s not delivered (%s): %d of this job's, %s",
            client_id,
            reason,
            len(pks),
            "to be retried" if retries_left else "given up",
        )
    not_delivered = sum(len(pks) for pks in failed.values())
    if job is not None and job.success_callback is None:  # a job of an earlier release counts by callbacks
        count_retries(job.connection, delivered=len(delivered), failed=not_delivered, retrying=retries_left)
    if not_delivered:
        raise DeliveryFailed(f"{not_delivered} of {len(rows)} back-channel logout(s) not delivered")


def rows_to_attempt(deliveries: list[list], owner: str | None, *, adopt: bool) -> list[BackchannelDelivery]:
    """The pending rows of `deliveries` that `owner` owns (all pending ones without an owner)."""
    wanted = {(int(application_id), str(sid)) for application_id, sid in deliveries}
    rows = list(
        BackchannelDelivery.objects.filter(login_session__sid__in={sid for _, sid in wanted}).select_related(
            "application__logout_settings", "login_session__user__account"
        )
    )
    if adopt and (missing := wanted - {(row.application_id, row.login_session.sid) for row in rows}):
        rows += rows_adopted(missing, owner)
    return [
        row
        for row in rows
        if (row.application_id, row.login_session.sid) in wanted
        and row.status == Status.PENDING
        and (owner is None or row.job_id == owner)
    ]


def rows_adopted(missing: set[tuple[int, str]], owner: str | None) -> list[BackchannelDelivery]:
    """Rows for deliveries queued without one (by a release that kept none): owned by `owner`."""
    login_sessions = {
        login_session.sid: login_session
        for login_session in LoginSession.objects.filter(sid__in={sid for _, sid in missing})
    }
    rows = []
    for application_id, sid in missing:
        if sid not in login_sessions:
            continue  # the login session is gone (housekeeping): nothing left to tell
        row, _ = BackchannelDelivery.objects.get_or_create(
            application_id=application_id,
            login_session=login_sessions[sid],
            defaults={"attempts": 1, "job_id": owner or ""},
        )
        rows.append(
            BackchannelDelivery.objects.select_related(
                "application__logout_settings", "login_session__user__account"
            ).get(pk=row.pk)
        )
    return rows
