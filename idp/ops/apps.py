"""App configuration: the metrics' signal receivers and the system checks."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # The counters exist (at zero) from start-up, and the receivers count sign-ins.
        from ops import metrics, signals  # noqa: F401
        from sso_client import prometheus  # noqa: F401  (its check names a bad METRICS_ALLOWED_IPS entry)
