"""accounts: two-factor sign-in with an authenticator app (django-otp TOTP) and recovery codes.

The services (enrol, confirm, verify, recovery codes, throttling), then the pages: the code step
after the password, MFA_REQUIRED, the account page, the admin's login. test_two_factor (end to
end) signs in through a client against the running IdP and reads the ID token.
"""

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.pending import PENDING_SESSION_KEY
from accounts.selectors import recovery_codes_left, two_factor_enabled, two_factor_required
from provider.models import LoginSession

pytestmark = pytest.mark.django_db

PASSWORD = "right-password"
FAILURE_LIMIT = 3


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = FAILURE_LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 100
    cache.clear()  # django-axes' counters
    yield
    cache.clear()


@pytest.fixture
def carol():
    return get_user_model().objects.create_user("carol", email="carol@example.com", password=PASSWORD)


def code(device: TOTPDevice, steps: int = 0) -> str:
    """The app's code `steps` time steps from now (the device accepts one step either side)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)  # the app knows no drift
    totp.time = time.time() + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    device = services.totp_device_start(user=user)
    codes = services.totp_device_confirm(device=device, code=code(device, -1))
    assert codes is not None
    device.refresh_from_db()
    return device, codes


# --- services --------------------------------------------------------------------------------------
def test_enrolment_starts_unconfirmed_and_a_reload_keeps_the_same_secret(carol):
    device = services.totp_device_start(user=carol)
    assert not device.confirmed
    assert not two_factor_enabled(carol)
    assert services.totp_device_start(user=carol).pk == device.pk


def test_a_stale_enrolment_starts_again_with_a_new_secret(carol):
    device = services.totp_device_start(user=carol)
    TOTPDevice.objects.filter(pk=device.pk).update(created_at=device.created_at.replace(year=2000))
    fresh = services.totp_device_start(user=carol)
    assert fresh.pk != device.pk and fresh.key != device.key
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_wrong_first_code_leaves_the_device_unconfirmed(carol):
    device = services.totp_device_start(user=carol)
    right = code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert services.totp_device_confirm(device=device, code=wrong) is None
    assert services.totp_device_confirm(device=device, code="not a code") is None
    device.refresh_from_db()
    assert not device.confirmed
    assert not two_factor_enabled(carol)


def test_confirming_turns_it_on_and_gives_ten_recovery_codes(carol):
    device, codes = enrolled(carol)
    assert device.confirmed
    assert two_factor_enabled(carol)
    assert len(codes) == len(set(codes)) == 10
    assert recovery_codes_left(carol) == 10


def test_the_qr_code_is_local_svg_without_script_or_inline_style_and_the_secret_is_base32(carol):
    device = services.totp_device_start(user=carol)
    svg = services.totp_qr_svg(device)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "style" not in svg and "script" not in svg and "http" not in svg
    secret = services.totp_secret_text(device).replace(" ", "")
    assert f"secret={secret}" in device.config_url
    assert device.config_url.startswith("otpauth://totp/")


def test_a_code_is_accepted_once_then_refused_as_a_replay(carol):
    device, _ = enrolled(carol)
    current = code(device)
    assert services.second_factor_verify(user=carol, code=current) == services.CodeCheck(True, "otp")
    assert not services.second_factor_verify(user=carol, code=current).accepted
    assert TOTPDevice.objects.get(pk=device.pk).throttling_failure_count == 1  # counted as a wrong code


def test_codes_are_read_as_people_type_them(carol):
    device, _ = enrolled(carol)
    current = code(device)
    assert services.second_factor_verify(user=carol, code=f" {current[:3]} {current[3:]} ").accepted


def test_wrong_codes_are_throttled_even_the_right_one_after(carol):
    device, _ = enrolled(carol)
    right = code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert services.second_factor_verify(user=carol, code=wrong) == services.CodeCheck(False)
    throttled = services.second_factor_verify(user=carol, code=right)
    assert not throttled.accepted and throttled.wait_seconds >= 1
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=device.created_at.replace(year=2000))
    assert services.second_factor_verify(user=carol, code=right).accepted


def test_a_recovery_code_works_once(carol):
    _, codes = enrolled(carol)
    assert services.second_factor_verify(user=carol, code=codes[0].upper()) == services.CodeCheck(True, "recovery")
    assert not services.second_factor_verify(user=carol, code=codes[0]).accepted
    assert recovery_codes_left(carol) == 9


def test_new_recovery_codes_replace_the_old_ones(carol):
    _, old = enrolled(carol)
    new = services.recovery_codes_replace(user=carol)
    assert not set(old) & set(new)
    StaticDevice.objects.filter(user=carol).update(throttling_failure_count=0)
    assert not services.second_factor_verify(user=carol, code=old[0]).accepted
    StaticDevice.objects.filter(user=carol).update(throttling_failure_count=0)
    assert services.second_factor_verify(user=carol, code=new[0]).accepted


def test_a_person_without_a_device_has_no_code_to_check(carol):
    assert services.second_factor_verify(user=carol, code="123456") == services.CodeCheck(False)
    assert services.second_factor_verify(user=carol, code="abcdefgh") == services.CodeCheck(False)


def test_turning_it_off_forgets_every_device(carol):
    enrolled(carol)
    services.two_factor_remove(user=carol)
    assert not TOTPDevice.objects.filter(user=carol).exists()
    assert not StaticToken.objects.filter(device__user=carol).exists()
    assert not two_factor_enabled(carol)


@pytest.mark.parametrize(
    ("setting", "person", "staff"), [("none", False, False), ("staff", False, True), ("all", True, True)]
)
def test_mfa_required_applies_to_whom_it_says(settings, carol, setting, person, staff):
    settings.MFA_REQUIRED = setting
    admin = get_user_model().objects.create_user("boss", password=PASSWORD, is_staff=True)
    assert two_factor_required(carol) is person
    assert two_factor_required(admin) is staff


# --- the sign-in: password, then code ---------------------------------------------------------------
def password_step(client, username="carol", password=PASSWORD, *, path=None, **params):
    return client.post(path or reverse("login"), {"username": username, "password": password, **params})


def test_without_a_device_the_password_alone_signs_in(client, carol):
    response = password_step(client)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert LoginSession.objects.get(user=carol).amr == ["pwd"]


def test_with_a_device_the_password_step_does_not_sign_in(client, carol):
    enrolled(carol)
    planted = client.session
    planted.save()
    response = password_step(client, next="/o/authorize/?client_id=x")
    assert client.session.session_key != planted.session_key  # a new key: a planted one is worthless
    assert response.status_code == 302 and response["Location"] == reverse("two-factor-verify")
    assert "_auth_user_id" not in client.session
    assert not LoginSession.objects.exists()
    note = client.session[PENDING_SESSION_KEY]
    assert note["user"] == str(carol.pk) and note["next"] == "/o/authorize/?client_id=x"
    assert PASSWORD not in repr(dict(client.session.items()))
    assert client.session.get_expiry_age() <= 300


def test_the_right_code_signs_in_with_pwd_and_otp_and_resumes_next(client, carol):
    device, _ = enrolled(carol)
    password_step(client, next="/o/authorize/?client_id=x")
    page = client.get(reverse("two-factor-verify"))
    assert page.status_code == 200 and 'name="code"' in page.content.decode()
    response = client.post(reverse("two-factor-verify"), {"code": code(device)})
    assert response.status_code == 302 and response["Location"] == "/o/authorize/?client_id=x"
    assert client.session["_auth_user_id"] == str(carol.pk)
    assert PENDING_SESSION_KEY not in client.session
    assert LoginSession.objects.get(user=carol).amr == ["pwd", "otp"]


def test_a_recovery_code_signs_in_too(client, carol):
    _, codes = enrolled(carol)
    password_step(client)
    assert client.post(reverse("two-factor-verify"), {"code": codes[3]}).status_code == 302
    assert LoginSession.objects.get(user=carol).amr == ["pwd", "otp"]


def test_a_wrong_code_is_refused_readably_and_nobody_is_signed_in(client, carol):
    device, _ = enrolled(carol)
    password_step(client)
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    response = client.post(reverse("two-factor-verify"), {"code": wrong})
    assert response.status_code == 400
    assert "not right" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))


def test_repeated_wrong_codes_lock_the_account_out_like_passwords(client, carol):
    enrolled(carol)
    password_step(client)
    statuses = [
        client.post(reverse("two-factor-verify"), {"code": f"00000{attempt}"}).status_code
        for attempt in range(FAILURE_LIMIT)
    ]
    assert statuses == [400] * (FAILURE_LIMIT - 1) + [429]
    assert PENDING_SESSION_KEY not in client.session  # the password again, after the lock-out
    assert password_step(client).status_code == 429


def test_the_code_step_without_a_password_first_says_to_sign_in_again(client, carol):
    response = client.post(reverse("two-factor-verify"), {"code": "123456"})
    assert response.status_code == 400
    assert reverse("login") in response.content.decode()


def test_the_code_step_expires(client, carol):
    device, _ = enrolled(carol)
    password_step(client, next="/o/authorize/?client_id=x")
    session = client.session
    session[PENDING_SESSION_KEY] = {**session[PENDING_SESSION_KEY], "until": time.time() - 1}
    session.save()
    response = client.post(reverse("two-factor-verify"), {"code": code(device)})
    assert response.status_code == 400
    assert "next=%2Fo%2Fauthorize%2F%3Fclient_id%3Dx" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_reauthentication_asks_for_the_code_too(client, carol):
    device, _ = enrolled(carol)
    password_step(client)
    client.post(reverse("two-factor-verify"), {"code": code(device)})
    sid, key = client.session["_idp_sid"], client.session.session_key
    response = password_step(client, path=reverse("reauthenticate"), next="/o/authorize/?client_id=x")
    assert response["Location"] == reverse("two-factor-verify")
    # Still signed in, in the same session, until the code: given up here, nothing changed.
    assert client.session.session_key == key == LoginSession.objects.get(sid=sid).session_key
    assert client.session["_auth_user_id"] == str(carol.pk)
    response = client.post(reverse("two-factor-verify"), {"code": code(device, 1)})
    assert response["Location"] == "/o/authorize/?client_id=x"
    assert client.session["_idp_sid"] == sid  # the same login session, re-authenticated


# --- MFA_REQUIRED: enrol before being signed in -------------------------------------------------------
def test_required_without_a_device_enrols_after_the_password_then_is_signed_in(client, carol, settings):
    settings.MFA_REQUIRED = "all"
    response = password_step(client, next="/o/authorize/?client_id=x")
    assert response["Location"] == reverse("two-factor-enrol")
    assert "_auth_user_id" not in client.session
    page = client.get(reverse("two-factor-enrol"))
    assert page.status_code == 200 and "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user=carol, confirmed=False)
    done = client.post(reverse("two-factor-enrol"), {"code": code(device)})
    assert done.status_code == 200
    assert "/o/authorize/?client_id=x" in done.content.decode()
    assert len(StaticToken.objects.filter(device__user=carol)) == 10
    assert client.session["_auth_user_id"] == str(carol.pk)
    assert LoginSession.objects.get(user=carol).amr == ["pwd", "otp"]


def test_required_for_staff_leaves_other_people_alone(client, carol, settings):
    settings.MFA_REQUIRED = "staff"
    assert password_step(client)["Location"] == reverse("home")


def test_required_enrolment_with_a_wrong_code_signs_nobody_in(client, carol, settings):
    settings.MFA_REQUIRED = "all"
    password_step(client)
    assert client.post(reverse("two-factor-enrol"), {"code": "000000"}).status_code == 400
    assert "_auth_user_id" not in client.session


def test_required_cannot_be_turned_off(client, carol, settings):
    enrolled(carol)
    settings.MFA_REQUIRED = "all"
    client.force_login(carol)
    response = client.post(reverse("two-factor-disable"), {"proof": PASSWORD})
    assert response.status_code == 403
    assert two_factor_enabled(carol)


# --- the account page -----------------------------------------------------------------------------------
def test_the_account_page_needs_a_sign_in(client):
    assert client.get(reverse("two-factor"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("two-factor-enrol"))["Location"].startswith(reverse("login"))


def test_enrolling_from_the_account_page(client, carol):
    password_step(client)
    page = client.get(reverse("two-factor-enrol"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html and "<script" not in html and "style=" not in html
    device = TOTPDevice.objects.get(user=carol, confirmed=False)
    assert services.totp_secret_text(device) in html
    done = client.post(reverse("two-factor-enrol"), {"code": code(device)})
    codes = list(StaticToken.objects.filter(device__user=carol).values_list("token", flat=True))
    assert all(token in done.content.decode() for token in codes)
    assert two_factor_enabled(carol)
    assert client.get(reverse("two-factor-enrol"))["Location"] == reverse("two-factor")


def test_enrolling_long_after_signing_in_asks_for_the_password_again(client, carol):
    password_step(client)
    LoginSession.objects.filter(user=carol).update(auth_time=LoginSession.objects.get().auth_time.replace(year=2000))
    response = client.get(reverse("two-factor-enrol"))
    assert response["Location"].startswith(reverse("reauthenticate") + "?next=")


def test_turning_it_off_needs_the_password_or_a_code(client, carol):
    device, _ = enrolled(carol)
    password_step(client)
    client.post(reverse("two-factor-verify"), {"code": code(device)})
    refused = client.post(reverse("two-factor-disable"), {"proof": "not-the-password"})
    assert refused.status_code == 400 and two_factor_enabled(carol)
    assert client.post(reverse("two-factor-disable"), {"proof": code(device, 1)})["Location"] == reverse("two-factor")
    assert not two_factor_enabled(carol)


def test_new_recovery_codes_with_the_password(client, carol):
    _, old = enrolled(carol)
    client.force_login(carol)
    page = client.post(reverse("two-factor-recovery-codes"), {"proof": PASSWORD})
    assert page.status_code == 200
    new = list(StaticToken.objects.filter(device__user=carol).values_list("token", flat=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert all(token in page.content.decode() for token in new)


# --- the admin ----------------------------------------------------------------------------------------------
def test_the_admin_login_asks_for_the_code_too(client, carol):
    carol.is_staff = True
    carol.save()
    device, _ = enrolled(carol)
    response = password_step(client, path=reverse("admin:login"), next="/admin/")
    assert response["Location"] == reverse("two-factor-verify")
    assert "_auth_user_id" not in client.session
    assert client.post(reverse("two-factor-verify"), {"code": code(device)})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_lists_devices_without_their_secrets(admin_client, carol):
    device, codes = enrolled(carol)
    listing = admin_client.get(reverse("admin:otp_totp_totpdevice_changelist"))
    assert "carol" in listing.content.decode()
    page = admin_client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk])).content.decode()
    assert device.key not in page
    static = StaticDevice.objects.get(user=carol)
    static_page = admin_client.get(reverse("admin:otp_static_staticdevice_change", args=[static.pk]))
    assert codes[0] not in static_page.content.decode()
    deleted = admin_client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    assert not two_factor_enabled(carol)
