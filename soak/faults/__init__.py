"""The faults, each scripted and timed (soak.faults.base says how every fault runs), by name."""

from __future__ import annotations

from soak.faults.base import Context, Fault, FaultResult
from soak.faults.idp_killed import IdpKilled
from soak.faults.postgres_restarted import PostgresRestarted
from soak.faults.redis_killed import RedisKilled
from soak.faults.site_killed import SiteKilled
from soak.faults.slow_idp import SlowIdp

FAULTS: dict[str, type[Fault]] = {
    "redis": RedisKilled,
    "idp": IdpKilled,
    "site": SiteKilled,
    "slow_idp": SlowIdp,
    "postgres": PostgresRestarted,
}

__all__ = ["FAULTS", "Context", "Fault", "FaultResult"]
