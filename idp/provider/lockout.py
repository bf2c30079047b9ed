"""Brute-force lock-out of sign-ins: django-axes, with one limit per account and one per address.

Every password check goes through django.contrib.auth.authenticate(): the login form, the admin's
login (the toolkit's password grant is refused, and our validator never checks a password). So
axes sees each one: its backend, first in AUTHENTICATION_BACKENDS, refuses a locked-out sign-in
before any password is checked, and its signal receivers count the failures here. The counters
live in the shared Redis (the cache "default"), so every replica sees every failure; no process
keeps one of its own.

Unlocking before the time is up: the admin's "Unlock sign-in" action on people, or
`manage.py axes_reset_username NAME...` and `manage.py axes_reset_ip ADDRESS...` (they work with
the cache handler; `axes_reset`, which would forget every counter, does not).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from math import ceil

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache_timeout, get_client_username, get_cool_off, make_cache_key_list
from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import escape_leading_slashes

from sso_client.prometheus import client_address as address_of

log = logging.getLogger(__name__)


def account_key(username: str | None) -> str:
    """The cache key of an account's counter, as axes names it (so its reset commands find it)."""
    return make_cache_key_list([{"username": username}])[0]


def address_key(address: str | None) -> str:
    return make_cache_key_list([{"ip_address": address}])[0]


def account_unlock(username: str) -> None:
    """Forget an account's failed sign-ins, as `manage.py axes_reset_username` does."""
    reset(username=username)


class LockoutHandler(AxesCacheHandler):
    """axes' cache handler, with LOGIN_FAILURE_LIMIT per account and LOGIN_ADDRESS_FAILURE_LIMIT per address.

    Named in AXES_HANDLER. axes compares the larger of its counters with one AXES_FAILURE_LIMIT;
    here each counter has a limit of its own, so that the many people behind one address (an
    office, a university) may fail more often in all than any one account may.
    """

    def counters(self, request: HttpRequest, credentials: dict | None = None) -> list[tuple[str, int]]:
        """(cache key, limit) of each counter a sign-in attempt is judged by."""
        return [
            (account_key(get_client_username(request, credentials)), settings.LOGIN_FAILURE_LIMIT),
            (address_key(request.axes_ip_address), settings.LOGIN_ADDRESS_FAILURE_LIMIT),
        ]

    def is_locked(self, request: HttpRequest, credentials: dict | None = None) -> bool:
        return any(self.cache.get(key, default=0) >= limit for key, limit in self.counters(request, credentials))

    def user_login_failed(self, sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
        """Count a failed sign-in on both counters; at either limit, lock out (axes' middleware answers)."""
        if request is None:  # axes' backend refuses authenticate() without a request: nothing to count
            return
        username = get_client_username(request, credentials)
        who = client_description(username, request.axes_ip_address, "", request.axes_path_info, request)
        request.axes_credentials = credentials
        if request.axes_locked_out:
            # Refused by axes' backend before the password was checked. Not counted (with
            # AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off), so a lock-out ends on time.
            log.warning("AXES: sign-in refused during a lock-out: %s.", who)
            return
        timeout = get_cache_timeout(request)
        counts = []
        for key, limit in self.counters(request, credentials):
            if self.cache.add(key, 1, timeout=timeout):
                counts.append((1, limit))
            else:  # each failure keeps the counter another LOGIN_LOCKOUT_SECONDS
                counts.append((self.cache.incr(key), limit))
                self.cache.touch(key, timeout=timeout)
        (account, account_limit), (address, address_limit) = counts
        log.warning(
            "AXES: failed sign-in by %s: %d of %d for the account, %d of %d from the address.",
            who,
            account,
            account_limit,
            address,
            address_limit,
        )
        if account >= account_limit or address >= address_limit:
            log.warning("AXES: locking out %s for %d seconds after repeated failed sign-ins.", who, timeout)
            request.axes_locked_out = True
            user_locked_out.send("axes", request=request, username=username, ip_address=request.axes_ip_address)

    def user_logged_in(self, sender, request: HttpRequest, user, **kwargs) -> None:
        """A sign-in forgets the account's failures, not the address's (AXES_RESET_ON_SUCCESS is off).

        Else anyone with an account of their own could wipe their address's counter by signing in
        between guesses at other people's passwords.
        """
        super().user_logged_in(sender, request, user, **kwargs)
        self.cache.delete(account_key(user.get_username()))


def cool_off(request: HttpRequest | None = None) -> timedelta:
    """AXES_COOLOFF_TIME: LOGIN_LOCKOUT_SECONDS (axes reads a plain number as hours)."""
    return timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)


def client_address(request: HttpRequest) -> str:
    """AXES_CLIENT_IP_CALLABLE: the address a sign-in came from.

    gunicorn sets REMOTE_ADDR to the connection's peer, and behind the TLS proxy
    (DJANGO_BEHIND_TLS_PROXY) that is the proxy, the same for everyone: one counter for the world.
    So there it is the last X-Forwarded-For entry, the one the proxy appended: the rule every
    process of the product uses (sso_client.prometheus.client_address, for metrics and log lines).
    """
    return address_of(request)


def client_description(username, ip_address, user_agent, path_info, request) -> str:
    """AXES_CLIENT_STR_CALLABLE: who, in axes' log lines.

    The username as typed and the address, for the operator; quoted, so that a newline in a
    username cannot forge a log line. axes never hands the password over.
    """
    return f"username {username!r} from {ip_address} at {path_info!r}"


def locked_out_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 and a page saying when to try again.

    The same page whatever the username, known or not, and whichever limit was reached: it tells
    an attacker nothing about the account.
    """
    seconds = int(get_cool_off(request).total_seconds())
    context = {
        "minutes": ceil(seconds / 60),
        # Back to the page that was posted to (the sign-in page, with its `next`), by GET.
        "retry_url": escape_leading_slashes(request.get_full_path()),
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
