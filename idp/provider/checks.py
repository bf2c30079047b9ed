"""System checks: catch a missing session store, or one that would hold pickles, at start-up."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from idp_server.database import database_problem
from provider.redis_health import redis_problem
from sso_client.production import JSON_SERIALIZER, pickling_caches


@checks.register("redis")
def check_redis_reachable(app_configs, **kwargs) -> list[checks.CheckMessage]:
    problem = redis_problem()
    return [checks.Error(problem, hint=None, id="provider.E001")] if problem else []


@checks.register(checks.Tags.caches)
def check_no_pickle_in_redis(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Refuse a django-redis cache that pickles: a value anyone writes to Redis would run as code here.

    The rule is sso_client.production.pickling_caches, the sites' too (sso_client.E005).
    """
    return [
        checks.Error(
            f'CACHES["{alias}"]["OPTIONS"]["SERIALIZER"] is pickle (django-redis\'s default): whoever can '
            "write to Redis could make the IdP run code.",
            hint=f'Set it to "{JSON_SERIALIZER}".',
            id="provider.E002",
        )
        for alias in pickling_caches(settings.CACHES)
    ]


@checks.register(checks.Tags.database)
def check_database_reachable(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Before `migrate` (and `check --database default`): the database answers, or one line naming DATABASE_URL."""
    if "default" not in (databases or ()):
        return []
    problem = database_problem("DATABASE_URL")
    return [checks.Error(problem, id="provider.E010")] if problem else []
