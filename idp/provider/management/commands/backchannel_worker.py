"""`manage.py backchannel_worker`: the worker that retries back-channel logout deliveries."""

from __future__ import annotations

import redis
from django.conf import settings
from django.core.management.base import BaseCommand
from rq import Worker
from rq.serializers import JSONSerializer

from provider.backchannel import QUEUE_NAME, queue


class Command(BaseCommand):
    help = (
        "Run the worker that retries back-channel logout deliveries the sign-out could not make "
        "at once (RQ, on REDIS_URL). Run at least one next to the IdP; more for redundancy."
    )

    def handle(self, *args, **options) -> None:
        connection = redis.Redis.from_url(settings.REDIS_URL)
        self.stdout.write(f"Retrying back-channel logouts from the {QUEUE_NAME!r} queue.")
        # with_scheduler: retries wait their backoff interval in RQ's scheduled registry.
        # The queue's JSON serializer, also for the scheduler and results (RQ's default is pickle).
        Worker([queue()], connection=connection, serializer=JSONSerializer).work(
            with_scheduler=True, logging_level="INFO"
        )
