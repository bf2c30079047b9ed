"""What a person sees, in a real Chromium: signing in and out across sites, and the admin."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from tests.e2e.oidc import AuthRequest, Client


def fill_login_form(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")


def test_an_administrator_registers_an_application_that_then_signs_people_in(page, idp, admin, alice):
    page.goto(f"{idp.url}/admin/")
    fill_login_form(page, *admin)
    expect(page.locator("body")).to_contain_text("Site administration")

    page.goto(f"{idp.url}/admin/oauth2_provider/application/add/")
    client_id = page.input_value("#id_client_id")
    client_secret = page.input_value("#id_client_secret")
    assert client_id and len(client_secret) >= 32
    # A new application starts as what this IdP serves: a confidential OIDC web client.
    assert page.input_value("input[name=client_type]:checked") == "confidential"
    assert page.input_value("input[name=authorization_grant_type]:checked") == "authorization-code"
    assert page.input_value("#id_algorithm") == "RS256"

    redirect_uri = "http://127.0.0.1:9/reports/callback/"
    page.fill("#id_name", "Reports")
    page.fill("#id_redirect_uris", redirect_uri)
    page.check("#id_skip_authorization")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    reports = Client(client_id, client_secret, redirect_uri)
    request = AuthRequest(reports)
    callback = idp.sign_in(requests.Session(), request, *alice)
    tokens = idp.exchange(request, callback["code"])
    assert tokens.status_code == 200, tokens.text
    claims = idp.verify_id_token(tokens.json()["id_token"], request)
    assert claims["aud"] == client_id
    assert claims["preferred_username"] == "alice"


def test_sign_in_once_in_a_browser_and_both_sites_know_you(page, site_a, site_b, idp, alice, tmp_path):
    page.goto(f"{site_a}/")
    expect(page).to_have_url(re.compile(f"^{re.escape(idp.url)}/accounts/login/"))
    expect(page).to_have_title(re.compile("Sign in"))  # the IdP's login page

    fill_login_form(page, alice[0], "a wrong password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    expect(page.locator("input[name=username]")).to_have_value(alice[0])
    page.screenshot(path=tmp_path / "login-refused.png")

    fill_login_form(page, *alice)

    expect(page).to_have_url(f"{site_a}/")
    expect(page.locator("#username")).to_have_text("alice")
    expect(page.locator("#email")).to_have_text("alice@example.com")
    page.screenshot(path=tmp_path / "site-a.png")

    page.click("text=Site B")  # the link to the other site
    expect(page).to_have_url(f"{site_b}/")
    expect(page.locator("#username")).to_have_text("alice")
    expect(page).to_have_title(re.compile("Site B"))
    page.screenshot(path=tmp_path / "site-b.png")


def test_signing_out_in_a_browser_signs_out_of_every_site(page, site_a, site_b, idp, alice, tmp_path):
    page.goto(f"{site_a}/")
    fill_login_form(page, *alice)
    expect(page.locator("#username")).to_have_text("alice")
    page.goto(f"{site_b}/")
    expect(page.locator("#username")).to_have_text("alice")

    page.click("header button[type=submit]")  # "Sign out" on site B
    expect(page).to_have_url(re.compile(f"^{re.escape(site_b)}/sso/signed-out/"))
    expect(page.locator("h1")).to_have_text("You are signed out")
    expect(page.locator("main")).to_contain_text("every site")
    page.screenshot(path=tmp_path / "signed-out.png")

    for site in (site_a, idp.url):
        page.goto(f"{site}/")
        expect(page).to_have_title(re.compile("Sign in"))  # asked to sign in again: signed out there too
