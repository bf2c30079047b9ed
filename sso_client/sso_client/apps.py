"""App configuration: registers the system checks."""

from django.apps import AppConfig


class SsoClientConfig(AppConfig):
    name = "sso_client"
    verbose_name = "Single sign-on client"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sso_client import checks, metrics  # noqa: F401  (registers the system checks; counters at zero)
