"""`manage.py housekeeping`: delete expired tokens and codes and old login sessions."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from provider.housekeeping import housekeeping_run


class Command(BaseCommand):
    help = (
        "Delete expired tokens and authorization codes (the toolkit's cleartokens) and login sessions "
        "that ended or expired over a day ago, in small batches. Run it periodically: once an hour "
        "from cron, or as a service with --every."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=int, metavar="SECONDS", help="Run again every SECONDS, until stopped.")
        parser.add_argument(
            "--heartbeat", type=Path, metavar="FILE", help="Touch FILE after each round (for a health check)."
        )

    def handle(self, *args, every: int | None = None, heartbeat: Path | None = None, **options) -> None:
        if every is not None and every < 1:
            self.stderr.write("error: --every takes a number of seconds of at least 1.")
            raise SystemExit(2)
        while True:
            cleared = housekeeping_run()
            self.stdout.write(f"Deleted {cleared['login_sessions']} old login session(s); expired tokens cleared.")
            if heartbeat is not None:
                heartbeat.touch()
            if every is None:
                return
            time.sleep(every)
