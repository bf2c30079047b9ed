"""System checks: a METRICS_ALLOWED_IPS entry that is no address or network, named at start-up."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core import checks


@checks.register()
def check_metrics_allowed_ips(app_configs, **kwargs) -> list[checks.CheckMessage]:
    messages = []
    for entry in getattr(settings, "METRICS_ALLOWED_IPS", []):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            messages.append(
                checks.Error(
                    f"METRICS_ALLOWED_IPS holds {entry!r}, which is neither an address nor a network.",
                    hint="Separate addresses (10.0.0.5) and networks (10.0.0.0/8) with commas.",
                    id="ops.E001",
                )
            )
    return messages
