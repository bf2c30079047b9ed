"""The identity provider's own app: django-oauth-toolkit extended, the login pages, the demo data."""

from django.apps import AppConfig


class ProviderConfig(AppConfig):
    name = "provider"
    verbose_name = "Identity provider"

    def ready(self) -> None:
        from provider import checks, signals  # noqa: F401  (registers the checks and signal receivers)
