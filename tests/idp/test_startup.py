"""Start-up with DJANGO_DEBUG off refuses local defaults, with one readable line, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from idp_server.signing_key import generate_rsa_private_key_pem

IDP_DIR = Path(__file__).resolve().parents[2] / "idp"


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_", "DEMO_", "ADMIN_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=IDP_DIR, env={**keep, **env}, capture_output=True, text=True
    )


@pytest.fixture
def production_env(tmp_path):
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "a-production-secret-key-" + "x" * 40,
        "OIDC_RSA_PRIVATE_KEY": generate_rsa_private_key_pem(),
        "SSO_LOCAL_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "OIDC_RSA_PRIVATE_KEY"])
def test_debug_off_without_a_secret_refuses_to_start(production_env, missing):
    del production_env[missing]
    result = manage("check", env=production_env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert "Traceback" not in result.stderr


def test_seeding_the_demo_in_production_requires_its_passwords(production_env):
    assert manage("migrate", "-v0", "--skip-checks", env=production_env).returncode == 0
    result = manage("seed_demo", "--skip-checks", env=production_env)
    assert result.returncode != 0
    assert "DEMO_PASSWORD" in result.stderr and "ADMIN_PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr
