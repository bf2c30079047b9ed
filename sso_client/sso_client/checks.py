"""System checks: name the exact setting to fix when the app is set up wrong."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from sso_client.conf import MANDATORY, SETTING_NAME, sso_settings
from sso_client.production import JSON_SERIALIZER, pickling_caches

MIDDLEWARE_PATH = "sso_client.middleware.SsoMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


@checks.register()
def check_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    messages = [
        checks.Error(f'{SETTING_NAME}["{key}"] is not set.', id="sso_client.E001")
        for key in MANDATORY
        if not sso_settings.user_settings.get(key)
    ]
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE_PATH not in middleware:
        messages.append(checks.Error(f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE.", id="sso_client.E002"))
    elif AUTH_MIDDLEWARE not in middleware or middleware.index(AUTH_MIDDLEWARE) > middleware.index(MIDDLEWARE_PATH):
        messages.append(
            checks.Error(
                f"In MIDDLEWARE, {MIDDLEWARE_PATH!r} must come after {AUTH_MIDDLEWARE!r}.", id="sso_client.E003"
            )
        )
    if settings.SESSION_ENGINE != "sso_client.sessions":
        messages.append(
            checks.Warning(
                'Set SESSION_ENGINE = "sso_client.sessions": sessions kept in the cache (Redis), which '
                "a sign-out elsewhere can end, and which stay ended.",
                id="sso_client.W001",
            )
        )
    return messages


@checks.register("redis")
def check_session_store(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from sso_client.health import session_store_problem

    if problem := session_store_problem():
        return [
            checks.Error(
                problem, hint="Start Redis, or point the sessions cache (REDIS_URL) at one.", id="sso_client.E004"
            )
        ]
    return []


@checks.register(checks.Tags.caches)
def check_no_pickle_in_redis(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Refuse a django-redis cache that pickles: a value anyone writes to Redis would run as code here."""
    return [
        checks.Error(
            f'CACHES["{alias}"]["OPTIONS"]["SERIALIZER"] is pickle (django-redis\'s default): whoever can '
            "write to Redis could make this site run code.",
            hint=f'Set it to "{JSON_SERIALIZER}".',
            id="sso_client.E005",
        )
        for alias in pickling_caches(settings.CACHES)
    ]


@checks.register(checks.Tags.database)
def check_database_reachable(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Before `migrate` (and `check --database default`): the database answers, or one line naming its URL."""
    if "default" not in (databases or ()):
        return []
    from sso_client.database import database_problem

    problem = database_problem()
    return [checks.Error(problem, id="sso_client.E010")] if problem else []
