"""System checks: catch a missing session store when a management command or server starts."""

from __future__ import annotations

from django.core import checks

from provider.redis_health import redis_problem


@checks.register("redis")
def check_redis_reachable(app_configs, **kwargs) -> list[checks.CheckMessage]:
    problem = redis_problem()
    return [checks.Error(problem, hint=None, id="provider.E001")] if problem else []
