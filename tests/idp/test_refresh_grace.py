"""A refresh answer lost on its way (the client timed out, crashed, lost Redis) is given again.

The client never stored the new pair, so it presents the rotated-out refresh token once more.
Within REFRESH_TOKEN_GRACE_PERIOD_SECONDS of the rotation it gets the very pair it missed, and
nothing new; after that, the reuse is a replay and revokes the whole family, as before.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from tests.idp import test_token_flows
from tests.idp.flows import claims_of
from tests.idp.test_token_flows import _checksum

RefreshToken = get_refresh_token_model()
world = test_token_flows.world  # the fixture: a person signed in, a client
pytestmark = pytest.mark.django_db


def test_the_grace_period_is_on(world):
    assert oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS >= 30


def test_a_lost_refresh_answer_is_replaced_within_the_grace_period(world):
    first = world.tokens()
    lost = world.refresh(first["refresh_token"]).json()  # the client never got this answer
    again = world.refresh(first["refresh_token"])
    assert again.status_code == 200, again.content
    again = again.json()
    assert again["refresh_token"] != lost["refresh_token"]
    assert world.userinfo(again["access_token"]).status_code == 200
    assert world.userinfo(lost["access_token"]).status_code == 401, "the pair nobody received is revoked"
    family = RefreshToken.objects.get(token_checksum=_checksum(again["refresh_token"])).token_family
    assert RefreshToken.objects.filter(revoked__isnull=True, token_family=family).count() == 1
    later = world.refresh(again["refresh_token"])
    assert later.status_code == 200, "the new pair goes on rotating"
    assert claims_of(later.json()["id_token"])["sid"] == claims_of(first["id_token"])["sid"]


def test_the_lost_pair_presented_later_revokes_the_family(world):
    """Whoever holds the pair of the lost answer (a thief who took it on its way) gives it away."""
    first = world.tokens()
    lost = world.refresh(first["refresh_token"]).json()
    again = world.refresh(first["refresh_token"]).json()
    stolen = world.refresh(lost["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert world.userinfo(again["access_token"]).status_code == 401, "the whole family is revoked"


def test_a_rotated_out_token_used_after_the_grace_period_revokes_the_family(world):
    first = world.tokens()
    second = world.refresh(first["refresh_token"]).json()
    long_ago = timezone.now() - timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS + 1)
    RefreshToken.objects.filter(token_checksum=_checksum(first["refresh_token"])).update(revoked=long_ago)
    replayed = world.refresh(first["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert world.userinfo(second["access_token"]).status_code == 401
    assert world.refresh(second["refresh_token"]).status_code == 400


def test_the_grace_period_with_this_idps_validator_passes_the_checks():
    from django.core import checks

    assert "provider.E004" not in [message.id for message in checks.run_checks()]


def test_the_grace_period_with_the_toolkits_validator_is_refused(settings):
    """The toolkit's own grace path would hand back the stored pair: only checksums here."""
    from django.core import checks

    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH2_VALIDATOR_CLASS": "oauth2_provider.oauth2_validators.OAuth2Validator",
    }
    assert "provider.E004" in [message.id for message in checks.run_checks()]
