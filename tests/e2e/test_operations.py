"""What an operator meets: start-up without Redis, production settings, the `make run` launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import free_port
from devstack.stack import IDP, REPO_ROOT, SITE_A, start_and_wait_for_exit

pytestmark = pytest.mark.usefixtures("redis_url")


@pytest.fixture
def no_redis_env(production_env, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        **production_env,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SSO_LOCAL_DIR": str(tmp_path),
    }


def assert_one_clear_line(output: str) -> None:
    assert "REDIS_URL" in output
    assert "Traceback" not in output
    assert sum("REDIS_URL" in line for line in output.splitlines()) == 1


@pytest.mark.parametrize("given_url", ["unreachable", "redis//no-scheme", "mysql://127.0.0.1/0", "redis://:@/x?db=a"])
def test_the_idp_server_refuses_to_start_without_redis(no_redis_env, tmp_path, given_url):
    env = dict(no_redis_env)
    if given_url != "unreachable":  # a malformed REDIS_URL is named just the same
        env["REDIS_URL"] = given_url
    code, output = start_and_wait_for_exit(IDP, env, tmp_path)
    assert code != 0
    assert_one_clear_line(output)


@pytest.mark.parametrize("command", [["migrate"], ["check"], ["seed_demo"]])
def test_management_commands_name_redis_url(no_redis_env, command):
    result = IDP.manage(*command, env=no_redis_env)
    assert result.returncode != 0
    assert_one_clear_line(result.stderr)


def test_make_run_names_an_unreachable_redis_url(no_redis_env):
    result = subprocess.run(
        [sys.executable, "-m", "devstack.run"],
        cwd=REPO_ROOT,
        env=no_redis_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert_one_clear_line(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1


def test_production_settings_pass_the_deploy_checks(production_env, redis_url, tmp_path):
    env = {
        **os.environ,
        **production_env,
        "IDP_URL": "https://sso.example.com",
        "SSO_LOCAL_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = IDP.manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_logs_hold_no_codes_tokens_or_passwords(stack, idp, site_a_client, alice):
    """After sign-ins and token exchanges, nothing secret is in the IdP's log."""
    import requests

    from tests.e2e.oidc import AuthRequest

    request = AuthRequest(site_a_client)
    callback = idp.sign_in(requests.Session(), request, *alice)
    tokens = idp.exchange(request, callback["code"]).json()
    idp.userinfo(tokens["access_token"])
    log = Path(stack.processes["idp"].log_path).read_text()
    assert "/o/token/" in log, "the access log is written"
    for secret in (
        callback["code"],
        tokens["access_token"],
        tokens["refresh_token"],
        alice[1],
        site_a_client.client_secret,
        request.verifier,
    ):
        assert secret not in log


# --- Redis Cluster is refused ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster_node_url(tmp_path_factory):
    """A redis-server running in cluster mode (one node, no slots yet): what a cluster URL reaches."""
    from devstack.redis_server import RedisServer

    directory = tmp_path_factory.mktemp("cluster-node")
    # A cluster node also listens on its port + 10000 (the cluster bus): the port must leave room.
    port = next(port for port in iter(free_port, None) if port + 10000 <= 65535)
    node = RedisServer(
        directory,
        port=port,
        extra_args=("--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf")),
    ).start()
    try:
        yield node.url
    finally:
        node.stop()


@pytest.mark.parametrize("site", ["idp", "site_a"])
def test_a_redis_cluster_is_refused_at_start_up_with_one_line(no_redis_env, tmp_path, cluster_node_url, site):
    served = {"idp": IDP, "site_a": SITE_A}[site]
    env = {**no_redis_env, "REDIS_URL": cluster_node_url}
    env["SITE_A_DATABASE_URL"] = f"sqlite:///{tmp_path / 'site_a.sqlite3'}"
    code, output = start_and_wait_for_exit(served, env, tmp_path)
    assert code != 0
    assert_one_clear_line(output)
    assert "Redis Cluster" in output and "not supported" in output
