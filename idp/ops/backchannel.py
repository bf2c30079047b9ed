"""Back-channel logout retries as metrics: counted by the workers in Redis, read when scraped.

The worker (`manage.py backchannel_worker`) serves no `/-/metrics`: its jobs count their
deliveries' outcomes in a Redis hash, and every IdP process reads that hash and the retry queue's
length when scraped, in one round trip. The deliveries not made yet, per application, are read
from the database (provider.models.BackchannelDelivery) in one query. These families are the
deployment's totals, the same on every replica: aggregate them with max(), not sum().
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rq import Queue
from rq.serializers import JSONSerializer

log = structlog.get_logger(__name__)

RETRIES_KEY = "idp:metrics:backchannel-logout-retries"
RETRY_OUTCOMES = ("delivered", "failed", "given_up")
#: A scrape waits this long for Redis at most; a Redis that is down costs the scrape nothing more.
REDIS_TIMEOUT_SECONDS = 0.5


def count_retries(connection, *, delivered: int, failed: int, retrying: bool) -> None:
    """A worker job's outcomes, per delivery: `failed` ones are to be retried, or given up."""
    if delivered:
        _count(connection, "delivered", delivered)
    if failed:
        _count(connection, "failed" if retrying else "given_up", failed)


# RQ callbacks of the jobs queued by earlier releases (one delivery each, counted by RQ's callbacks).
def retry_delivered(job, connection, result, *args, **kwargs) -> None:
    """RQ's success callback of a queued delivery."""
    _count(connection, "delivered")


def retry_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback, after every failed attempt: RQ tries again while retries are left."""
    if job.should_retry:
        _count(connection, "failed")
        return
    _count(connection, "given_up")
    application_id = job.args[0] if job.args else None
    log.warning("backchannel_logout_given_up", application_id=application_id, reason=str(exc_value))


def _count(connection, outcome: str, amount: int = 1) -> None:
    try:
        connection.hincrby(RETRIES_KEY, outcome, amount)
    except redis.RedisError as error:  # a lost count must not fail (and so repeat) the delivery
        log.warning("backchannel_logout_retry_not_counted", outcome=outcome, error=type(error).__name__)


def scrape_connection() -> redis.Redis:
    """The Redis primary, with the scrape's short wait (one client per process, pooled)."""
    from provider.redis_health import redis_deployment

    return redis_deployment().client(timeout=REDIS_TIMEOUT_SECONDS)


class RetryQueueCollector:
    """The retry queue's length (waiting to run, waiting out a backoff) and the workers' counts.

    Collected at scrape time from Redis, in one pipelined round trip; with Redis down the scrape
    goes on without these two families (readiness, /-/health/ready/, reports Redis).
    """

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name

    def collect(self) -> Iterator:
        connection = scrape_connection()
        queue = Queue(self.queue_name, connection=connection, serializer=JSONSerializer)
        try:
            pipeline = connection.pipeline(transaction=False)
            pipeline.llen(queue.key)
            pipeline.zcard(queue.scheduled_job_registry.key)
            pipeline.hgetall(RETRIES_KEY)
            queued, scheduled, counts = pipeline.execute()
        except (redis.RedisError, OSError) as error:
            log.warning("metrics_retry_queue_unreadable", error=type(error).__name__)
            return
        length = GaugeMetricFamily(
            "idp_backchannel_logout_retry_queue_length",
            "Back-channel logout deliveries waiting for the worker: queued (to run now) or scheduled "
            "(waiting out their backoff). The same on every replica.",
            labels=["state"],
        )
        length.add_metric(["queued"], queued)
        length.add_metric(["scheduled"], scheduled)
        yield length
        retries = CounterMetricFamily(
            "idp_backchannel_logout_retries",
            "The worker's delivery attempts by outcome: delivered, failed (to be retried), given_up "
            "(the last retry failed). Deployment totals, the same on every replica.",
            labels=["outcome"],
        )
        for outcome in RETRY_OUTCOMES:
            retries.add_metric([outcome], int(counts.get(outcome.encode(), 0)))
        yield retries


class UndeliveredCollector:
    """Back-channel logouts not made yet, per application: pending (queued, or waiting out a
    backoff) and failed (the worker gave up), read from the database at scrape time.

    One series per application with a back-channel logout URI and state, labelled by client_id:
    as many as the applications an administrator registered, never grown by a request. With the
    database unreachable the scrape goes on without this family.
    """

    STATES = ("pending", "failed")

    def collect(self) -> Iterator:
        from django.db.models import Count, Q
        from oauth2_provider.models import get_application_model

        try:
            counted = list(
                get_application_model()
                .objects.filter(logout_settings__backchannel_logout_uri__gt="")
                .annotate(
                    **{
                        state: Count("backchannel_deliveries", filter=Q(backchannel_deliveries__status=state))
                        for state in self.STATES
                    }
                )
                .values_list("client_id", *self.STATES)
                .order_by("client_id")
            )
        except Exception as error:  # the scrape answers without this family, never a 500
            log.warning("metrics_undelivered_unreadable", error=type(error).__name__)
            return
        undelivered = GaugeMetricFamily(
            "idp_backchannel_logout_undelivered",
            "Back-channel logout deliveries not made yet, per application (client_id): pending (queued, "
            "or waiting out a backoff) and failed (the worker gave up; the admin's retry now). The same "
            "on every replica.",
            labels=["client_id", "state"],
        )
        for client_id, *counts in counted:
            for state, count in zip(self.STATES, counts, strict=True):
                undelivered.add_metric([client_id, state], count)
        yield undelivered
