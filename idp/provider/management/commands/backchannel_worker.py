"""`manage.py backchannel_worker`: the worker that retries back-channel logout deliveries."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from rq import Worker
from rq.serializers import JSONSerializer

from provider.backchannel import QUEUE_NAME, queue
from provider.redis_health import redis_deployment

WORKER_TTL_SECONDS = 25
MAINTENANCE_SECONDS = 10


class Command(BaseCommand):
    help = (
        "Run the worker that retries back-channel logout deliveries the sign-out could not make "
        "at once (RQ, on REDIS_URL or the primary REDIS_SENTINELS name). Run at least one next to "
        "the IdP; more for redundancy."
    )

    def handle(self, *args, **options) -> None:
        # The primary the Sentinels name, when REDIS_SENTINELS is set: followed across a failover.
        # A client of its own: RQ lengthens its read timeout to outlast the blocking dequeue.
        connection = redis_deployment().client(timeout=30)
        self.stdout.write(f"Retrying back-channel logouts from the {QUEUE_NAME!r} queue.")
        # with_scheduler: retries wait their backoff interval in RQ's scheduled registry.
        # The queue's JSON serializer, also for the scheduler and results (RQ's default is pickle).
        # RQ's scheduler (the process that moves a retry to the queue when its backoff is over)
        # stops at the first Redis error, a restart or a failover, and the worker starts it
        # again at its next maintenance: every MAINTENANCE_SECONDS here rather than RQ's ten
        # minutes. The worker wakes from its blocking dequeue every WORKER_TTL_SECONDS - 15 s.
        worker = Worker(
            [queue()],
            connection=connection,
            serializer=JSONSerializer,
            worker_ttl=WORKER_TTL_SECONDS,
            maintenance_interval=MAINTENANCE_SECONDS,
            log_job_description=False,  # a job's arguments hold the login session's id: not logged
        )
        worker.work(with_scheduler=True, logging_level="INFO")
