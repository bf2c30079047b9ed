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


@checks.register()
def check_refresh_grace_has_its_validator(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The refresh-token grace period with hashed token storage needs this IdP's validator, which
    mints a new pair for a lost answer (the toolkit would hand back the stored one: empty)."""
    from oauth2_provider.settings import oauth2_settings

    from provider.oauth2_validators import OAuth2Validator

    if not (
        oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS > 0 and oauth2_settings.COMPLIANT_BCP_RFC9700_TOKEN_STORAGE
    ):
        return []
    if issubclass(oauth2_settings.OAUTH2_VALIDATOR_CLASS, OAuth2Validator):
        return []
    return [
        checks.Error(
            "REFRESH_TOKEN_GRACE_SECONDS with hashed token storage needs the IdP's own validator "
            "(provider.oauth2_validators.OAuth2Validator) as OAUTH2_VALIDATOR_CLASS.",
            hint="Set REFRESH_TOKEN_GRACE_SECONDS=0, or subclass provider.oauth2_validators.OAuth2Validator.",
            id="provider.E004",
        )
    ]
