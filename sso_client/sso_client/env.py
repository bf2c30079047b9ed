"""Reading a site's configuration from the environment, for the settings module of a site.

Local defaults keep `make run` working with nothing set; with DJANGO_DEBUG off they are refused,
so a production site cannot start on a secret that is written in the repository.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    return default if value == "" else value.strip().lower() in {"1", "true", "yes", "on"}


def local_default(name: str, value: str, *, debug: bool) -> str:
    """`name` from the environment; `value` only when `debug` is on."""
    if from_env := os.environ.get(name):
        return from_env
    if not debug:
        raise ImproperlyConfigured(
            f"{name} must be set when DJANGO_DEBUG is off (the built-in default is for local runs only)."
        )
    return value
