"""Back-channel logout retries as metrics: counted by the workers in Redis, read when scraped.

The worker (`manage.py backchannel_worker`) serves no `/-/metrics`: RQ's callbacks count its
outcomes in a Redis hash, and every IdP process reads that hash and the retry queue's length
when scraped, in one round trip. These two families are the deployment's totals, the same on
every replica: aggregate them with max(), not sum().
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


def _count(connection, outcome: str) -> None:
    try:
        connection.hincrby(RETRIES_KEY, outcome, 1)
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
