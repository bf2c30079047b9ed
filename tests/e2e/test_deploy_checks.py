"""`manage.py check --deploy` is clean for the IdP and both sites with production settings.

Production here: debug off, https URLs, secrets from the environment and a real Redis (the IdP's
own check, provider.E001, asks Redis whether it answers). Any warning fails the test.
"""

from __future__ import annotations

import os

import pytest

from devstack.stack import SITES, Site


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_check_deploy_is_clean_with_production_settings(site: Site, production_env, tmp_path):
    env = {
        **os.environ,
        **production_env,
        "IDP_URL": "https://sso.example.com",
        "SITE_A_URL": "https://a.example.com",
        "SITE_B_URL": "https://b.example.com",
        "SSO_LOCAL_DIR": str(tmp_path),
    }
    assert env["DJANGO_DEBUG"] == "0" and len(env["DJANGO_SECRET_KEY"]) >= 50

    result = site.manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
