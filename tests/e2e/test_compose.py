"""compose.yaml, the Dockerfile and .env.example: the production stack, checked without a container engine.

No Docker runs here. So the file is parsed as the Compose specification defines it (`compose_spec`,
which refuses unknown keys and wrong types), every variable the product reads is traced to the
service that needs it, and then each service's `command` is RUN as written: with its
`working_dir` and the environment Compose would give it (.env.example's values, its empty
secrets filled in as an operator would), only pointed at this machine: fresh databases from
`database_server`, the tests' Redis, free ports instead of the published ones, and the image's
paths (/app, /app/static, /run/secrets, /tmp) mapped to the checkout and to temporary folders.
migrate and seed run to completion; the IdP, both sites, the worker and housekeeping run as
processes, each waited for with its own health check command; then a person signs in at site A,
goes on to site B without a password and signs out of both.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from devstack.processes import ManagedProcess, free_port
from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file
from tests.e2e.compose_file import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    MissingVariable,
    command_argv,
    declared_environment,
    dockerfile_instructions,
    dockerignore_excludes,
    healthcheck_argv,
    interpolate,
    listed_in_env_file,
    load_compose,
    read_env_file,
    referenced_variables,
    service_environment,
    variables_read,
)
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor

BIN = Path(sys.executable).parent
SH = shutil.which("sh") or "/bin/sh"
BASH = shutil.which("bash") or "/bin/bash"
ONE_SHOT = ["migrate", "seed"]
WEB = {"idp": "IDP_URL", "site_a": "SITE_A_URL", "site_b": "SITE_B_URL"}
LONG_RUNNING = [*WEB, "worker", "housekeeping"]
SERVICES = ["postgres", "redis", *ONE_SHOT, *LONG_RUNNING]
#: Which parts of the code each application service runs (what its environment must provide for).
CODE = {
    "idp": [ROOT / "idp"],
    "site_a": [ROOT / "client_site_a", ROOT / "sso_client"],
    "site_b": [ROOT / "client_site_b", ROOT / "sso_client"],
}
RUNS = {
    "migrate": ["idp", "site_a", "site_b"],
    "seed": ["idp"],
    "idp": ["idp"],
    "site_a": ["site_a"],
    "site_b": ["site_b"],
    "worker": ["idp"],
    "housekeeping": ["idp"],
}
#: Variables the code reads that compose.yaml rightly does not give, and why.
NOT_FOR_COMPOSE = {
    "SSO_LOCAL_DIR": "the local state folder of `make run`: with the databases, the signing key and "
    "STATIC_ROOT configured, production keeps nothing there",
    "OIDC_RSA_PRIVATE_KEY": "compose gives the signing key as a file (a compose secret), OIDC_RSA_PRIVATE_KEY_FILE",
}
#: Variables of a web process only: gunicorn's, and what serving pages needs (static files, metrics).
WEB_ONLY = {
    "BIND",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "FORWARDED_ALLOW_IPS",
    "STATIC_ROOT",
    "PROMETHEUS_MULTIPROC_DIR",
}
#: Variables a service needs only for one-time set-up: the seed registers the users and clients.
SEED_ONLY = {"DEMO_PASSWORD", "ADMIN_PASSWORD", "SITE_A_CLIENT_SECRET", "SITE_B_CLIENT_SECRET"}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|^REDISCLI_AUTH$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def services_of(compose: dict) -> dict[str, dict]:
    return compose["services"]


# --- (a) the file, as the Compose specification reads it -------------------------------------------


def test_compose_names_the_services_of_the_contract(compose):
    assert set(services_of(compose)) == set(SERVICES)
    assert compose["volumes"].keys() >= {"postgres-data", "redis-data"}, "named volumes for the data"


def test_the_compose_parser_refuses_what_compose_would_refuse():
    """The parser is a real one: an unknown key or a wrong type is an error, not ignored."""
    from compose_spec import PyOptions

    for broken in [
        "services:\n  idp:\n    image: sso\n    helthcheck:\n      test: [CMD, 'true']\n",
        "services:\n  idp:\n    image: sso\n    healthcheck:\n      test: 5\n",
        "services:\n  idp:\n    image: sso\n    depends_on:\n      migrate:\n        condition: finished\n",
    ]:
        with pytest.raises(ValueError):
            PyOptions(apply_merge=True).from_yaml(broken)


def test_every_long_running_service_has_a_health_check(compose):
    for name in ["postgres", "redis", *LONG_RUNNING]:
        service = services_of(compose)[name]
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert healthcheck_argv(check["test"]), name
        assert service.get("restart") == "unless-stopped", f"{name} is restarted when it stops"
    for name in WEB:
        test = services_of(compose)[name]["healthcheck"]["test"]
        assert test == ["CMD", "python", "/app/deploy/healthcheck.py", "http", WEB[name]], (
            f"{name}: checked on /-/health/ready/ with python (the image has no curl)"
        )


def test_one_shot_services_run_first_and_everything_else_after_them(compose):
    services = services_of(compose)
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} runs once"
        assert "healthcheck" not in services[name]
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["seed"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        for one_shot in ONE_SHOT:
            assert depends.get(one_shot) == {"condition": "service_completed_successfully"}, (name, one_shot)
        for store in ["postgres", "redis"]:
            assert depends.get(store) == {"condition": "service_healthy"}, (name, store)


def test_the_stores_persist_and_check_themselves(compose):
    postgres, redis = services_of(compose)["postgres"], services_of(compose)["redis"]
    assert any(volume.startswith("postgres-data:/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert (
        "./deploy/postgres/create-databases.sh:/docker-entrypoint-initdb.d/10-create-databases.sh:ro"
        in (postgres["volumes"])
    )
    assert (ROOT / "deploy/postgres/create-databases.sh").is_file()
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert any(volume.startswith("redis-data:/data") for volume in redis["volumes"])
    assert "--appendonly yes" in " ".join(command_argv(redis["command"])), "Redis keeps an append-only file"
    assert "redis-cli" in " ".join(healthcheck_argv(redis["healthcheck"]["test"]))


def test_the_web_services_run_gunicorn_with_the_repositorys_configuration(compose):
    for name, wsgi in [("idp", "idp_server.wsgi"), ("site_a", "site_a.wsgi"), ("site_b", "site_b.wsgi")]:
        service = services_of(compose)[name]
        assert command_argv(service["command"]) == ["gunicorn", "-c", "/app/gunicorn.conf.py", wsgi]
        assert declared_environment(service)["BIND"].startswith("0.0.0.0:")
    assert command_argv(services_of(compose)["worker"]["command"]) == ["python", "manage.py", "backchannel_worker"]
    queue_name = re.search(r'^QUEUE_NAME = "([^"]+)"', (ROOT / "idp/provider/backchannel.py").read_text(), re.M)
    assert services_of(compose)["worker"]["healthcheck"]["test"][-1] == queue_name.group(1), "the worker's queue"
    assert command_argv(services_of(compose)["housekeeping"]["command"])[:6] == [
        *["python", "manage.py", "housekeeping", "--every", "3600", "--heartbeat"]
    ]


def test_a_public_url_is_the_same_address_for_browsers_and_for_the_containers(compose):
    """URL host = the service's network alias, URL port = the port it listens on = the published port.

    A browser on this machine resolves *.localhost to 127.0.0.1 and reaches the published port; a
    container resolves the same name to the service (its alias) and reaches the same port.
    """
    env = read_env_file()
    for name, variable in WEB.items():
        service = services_of(compose)[name]
        url = urlsplit(env[variable])
        bind_port = int(declared_environment(service)["BIND"].rsplit(":", 1)[1])
        assert url.hostname.endswith(".localhost"), f"{variable} of .env.example is for a local try"
        assert url.hostname in service["networks"]["default"]["aliases"], (variable, name)
        assert url.port == bind_port, (variable, name)
        assert service["ports"] == [f"127.0.0.1:{bind_port}:{bind_port}"], "published on loopback only"


def test_the_database_and_redis_urls_match_the_roles_and_passwords_the_stores_are_given(compose):
    services = services_of(compose)
    script = (ROOT / "deploy/postgres/create-databases.sh").read_text()
    assert "${APP_DATABASES:-idp site_a site_b}" in script
    postgres = declared_environment(services["postgres"])
    named = {name: f"var-{name}" for name in read_env_file()}  # each reference, standing for itself
    for service_name, variable, database in [
        ("idp", "DATABASE_URL", "idp"),
        ("site_a", "SITE_A_DATABASE_URL", "site_a"),
        ("site_b", "SITE_B_DATABASE_URL", "site_b"),
    ]:
        url = urlsplit(interpolate(declared_environment(services[service_name])[variable], named))
        assert (url.scheme, url.hostname, url.port, url.path) == ("postgres", "postgres", 5432, f"/{database}")
        assert url.username == database, "each database's own role"
        password_variable = f"{database.upper()}_DB_PASSWORD"
        assert url.password == f"var-{password_variable}"
        assert referenced_variables(postgres[password_variable]) == {password_variable}, "the script's input"
    redis_url = urlsplit(interpolate(declared_environment(services["idp"])["REDIS_URL"], named))
    assert (redis_url.hostname, redis_url.port, redis_url.password) == ("redis", 6379, "var-REDIS_PASSWORD")
    requirepass = command_argv(services["redis"]["command"])
    assert referenced_variables(requirepass[requirepass.index("--requirepass") + 1]) == {"REDIS_PASSWORD"}


# --- (b) configuration: every variable the code reads, and no secret in the files ----------------


def needed_variables(service_name: str) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    for part in RUNS[service_name]:
        for name, files in variables_read(CODE[part]).items():
            needed.setdefault(name, set()).update(files)
    if service_name in WEB:
        for name, files in variables_read([ROOT / "gunicorn.conf.py"]).items():
            needed.setdefault(name, set()).update(files)
    return needed


def test_every_variable_the_code_reads_is_given_to_the_service_that_needs_it(compose):
    listed = listed_in_env_file()
    problems = []
    for service_name in RUNS:
        declared = declared_environment(services_of(compose)[service_name])
        for variable, files in sorted(needed_variables(service_name).items()):
            if variable in NOT_FOR_COMPOSE:
                continue
            if variable in SEED_ONLY and service_name != "seed":
                continue
            if variable in WEB_ONLY and service_name not in WEB:
                continue
            if variable not in declared:
                problems.append(f"{service_name} lacks {variable} (read in {', '.join(sorted(files))})")
            elif declared[variable] is None and variable not in listed:
                problems.append(f"{service_name} passes {variable} through, but .env.example does not list it")
    assert not problems, "\n".join(problems)
    for variable in SEED_ONLY:
        assert declared_environment(services_of(compose)["seed"])[variable], f"the seed needs {variable}"


def test_every_django_process_runs_with_debug_off_and_its_own_secret_key(compose):
    keys = {}
    for service_name in RUNS:
        declared = declared_environment(services_of(compose)[service_name])
        assert declared["DJANGO_DEBUG"] == "0", service_name
        keys[service_name] = declared["DJANGO_SECRET_KEY"]
    assert referenced_variables(keys["idp"]) == {"IDP_SECRET_KEY"}
    assert referenced_variables(keys["site_a"]) == {"SITE_A_SECRET_KEY"}
    assert referenced_variables(keys["site_b"]) == {"SITE_B_SECRET_KEY"}


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


def test_every_variable_compose_yaml_interpolates_is_in_env_example(compose):
    env_names = set(read_env_file())
    referenced = set().union(*(referenced_variables(text) for text in strings_in(compose)))
    assert {"IDP_URL", "IDP_SECRET_KEY", "OIDC_SIGNING_KEY_FILE"} <= referenced
    assert referenced <= env_names, f"not in .env.example: {sorted(referenced - env_names)}"


def test_no_secret_is_written_in_compose_yaml(compose):
    for service_name, service in services_of(compose).items():
        for variable, value in declared_environment(service).items():
            if value is None or not SECRET_NAME.search(variable):
                continue
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), (
                f"{service_name}: {variable} must come from a required variable (${{VAR:?…}}), not {value!r}"
            )
        for variable, value in declared_environment(service).items():
            if value and "://" in value:
                password = urlsplit(value.replace("${", "").replace("}", "")).password
                assert password is None or password.startswith(tuple(read_env_file())), (service_name, variable)
    assert "PRIVATE KEY" not in COMPOSE_FILE.read_text()
    for text in strings_in(compose):
        for word in re.sub(r"\$\{[^}]*\}", " ", text).split():  # what a reference does not fill in
            assert not looks_like_a_secret(word), f"compose.yaml: {word!r} looks like a secret"


def looks_like_a_secret(value: str) -> bool:
    """A long random-looking token: what a real key, password or secret would be."""
    token = value.strip("\"'")
    if "PRIVATE KEY" in token:
        return True
    if len(token) < 16 or "/" in token or "." in token:
        return False
    classes = sum(bool(re.search(pattern, token)) for pattern in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return classes >= 2 and len(set(token)) >= 10


def test_env_example_holds_no_real_looking_secret():
    values = read_env_file()
    for name, value in values.items():
        if SECRET_NAME.search(name) and not name.endswith("_FILE"):
            assert value == "", f".env.example: {name} must be left for the operator to fill in"
        assert not looks_like_a_secret(value), f".env.example: {name} looks like a real secret"
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.lstrip().startswith("#") and "=" in line:
            value = line.split("=", 1)[1].strip()
            assert not looks_like_a_secret(value), f".env.example: a comment shows a real-looking secret: {line}"
    assert values["DJANGO_BEHIND_TLS_PROXY"] in {"0", "1"}


def test_the_secret_check_knows_a_secret_when_it_sees_one():
    assert looks_like_a_secret(secrets.token_hex(32))
    assert looks_like_a_secret(secrets.token_urlsafe(40))
    assert not looks_like_a_secret("http://idp.localhost:8000")
    assert not looks_like_a_secret("./secrets/oidc-signing-key.pem")


# --- the Dockerfile, which cannot be built here -------------------------------------------------------


def test_the_dockerfile_copies_only_what_exists_and_runs_only_what_make_and_the_tests_run(compose):
    instructions = dockerfile_instructions()
    assert instructions[0].keyword == "FROM" and instructions[0].arguments == "python:3.11-slim"
    for copy in [i for i in instructions if i.keyword == "COPY"]:
        *sources, _destination = copy.arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            assert not dockerignore_excludes(source.rstrip("/")), f"COPY {source}: .dockerignore leaves it out"
    for private in [".env", "secrets/oidc-signing-key.pem", ".venv", ".local", ".git"]:
        assert dockerignore_excludes(private), f".dockerignore must leave {private} out of the build context"

    makefile = (ROOT / "Makefile").read_text()
    known = {
        "pip install -r requirements.txt": "pip install --quiet -r requirements.txt" in makefile,
        "pip install --no-deps --no-build-isolation ./sso_client && rm -rf sso_client": (
            "--no-deps --no-build-isolation" in makefile and "./sso_client" in makefile
        ),
        # test_compose runs this very script, and serves what it collects (compose_stack below).
        "sh deploy/collectstatic.sh /app/static": True,
        # Makes the unprivileged user; nothing of the project's.
        "useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent "
        "--shell /usr/sbin/nologin sso": True,
    }
    for run in [i for i in instructions if i.keyword == "RUN"]:
        assert known.get(run.arguments), f"RUN {run.arguments}: neither make nor the tests run it"
    users = [i.arguments for i in instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "the processes run as a user of their own"

    for name, service in services_of(compose).items():
        if "build" in service:
            assert service["build"] in [".", {"context": "."}], name
            assert service["image"] == "sso:latest"
    for name in WEB:
        static_root = declared_environment(services_of(compose)[name])["STATIC_ROOT"]
        assert static_root == f"/app/static/{name}", "where deploy/collectstatic.sh puts the site's files"


def image_paths() -> list[str]:
    """Where the Dockerfile's COPY instructions put things in the image."""
    workdir, paths = "/", []
    for instruction in dockerfile_instructions():
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.arguments)
        elif instruction.keyword == "COPY":
            *sources, destination = instruction.arguments.split()
            target = posixpath.normpath(posixpath.join(workdir, destination))
            for source in sources:
                into_folder = destination.endswith("/") and (ROOT / source).is_file()
                paths.append(posixpath.join(target, Path(source).name) if into_folder else target)
    return paths


def test_the_paths_compose_names_in_the_image_exist(compose):
    """/app/... in commands, health checks and working folders: COPYed into the image, or collected."""
    copied = [path for path in image_paths() if path != "/app/sso_client"]  # installed, then removed
    text = " ".join(
        " ".join(
            [
                service.get("working_dir", ""),
                *command_argv(service.get("command", [])),
                *healthcheck_argv(service.get("healthcheck", {}).get("test", ["CMD"])),
            ]
        )
        for name, service in services_of(compose).items()
        if name in RUNS
    )
    for path in set(re.findall(r"/app(?:/[\w.\-]+)*", text)):
        if path == "/app" or path.startswith("/app/static/"):
            continue
        assert any(path == c or path.startswith(c + "/") for c in copied), f"{path} is not in the image"
        assert (ROOT / path.removeprefix("/app/")).exists(), path


# --- (c) running it --------------------------------------------------------------------------------


@dataclass
class ComposeStack:
    """The services of compose.yaml running as processes of this machine."""

    tmp: Path
    dotenv: dict[str, str]
    compose: dict
    urls: dict[str, str] = field(default_factory=dict)
    replace: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    image_env: dict[str, str] = field(default_factory=dict)
    #: What the one-shot services printed.
    outputs: dict[str, str] = field(default_factory=dict)
    #: The worker's health check, run before the worker started.
    worker_before_start: subprocess.CompletedProcess | None = None

    def map_text(self, text: str, service_name: str) -> str:
        """The image's paths and the compose network's addresses, as they are on this machine."""
        paths = {
            "/app/static": str(self.tmp / "static"),
            "/run/secrets": str(self.tmp / "secrets"),
            "/tmp": str(self.tmp_of(service_name)),  # noqa: S108 - the container's /tmp, mapped to ours
            "/app": str(ROOT),
        }
        pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(p) for p in paths) + r")(?=/|\b|$)")
        text = pattern.sub(lambda match: paths[match.group(1)], text)
        for old, new in self.replace.items():
            text = text.replace(old, new)
        return text

    def tmp_of(self, service_name: str) -> Path:
        path = self.tmp / "containers" / service_name / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def environment(self, service_name: str) -> dict[str, str]:
        """What the container would get (the image's ENV, then the service's), mapped to this machine."""
        service = self.compose["services"][service_name]
        env = {**self.image_env, **service_environment(service, self.dotenv)}
        env = {name: self.map_text(value, service_name) for name, value in env.items()}
        for name in env.keys() & self.overrides.keys():
            env[name] = self.overrides[name]
        env["PATH"] = f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
        env["HOME"] = env["TMPDIR"] = str(self.tmp_of(service_name))
        env["LANG"] = "C.UTF-8"
        return env

    def argv(self, service_name: str, command) -> list[str]:
        return [self.map_text(argument, service_name) for argument in command]

    def command(self, service_name: str) -> list[str]:
        service = self.compose["services"][service_name]
        command = [interpolate(argument, self.dotenv) for argument in command_argv(service["command"])]
        return self.argv(service_name, command)

    def cwd(self, service_name: str) -> Path:
        return Path(self.map_text(self.compose["services"][service_name]["working_dir"], service_name))

    def run_once(self, service_name: str, *, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(service_name),
            cwd=self.cwd(service_name),
            env=self.environment(service_name),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, service_name: str) -> ManagedProcess:
        process = ManagedProcess(
            service_name,
            self.command(service_name),
            env=self.environment(service_name),
            cwd=self.cwd(service_name),
            log_path=self.tmp / "logs" / f"{service_name}.log",
        )
        self.processes[service_name] = process
        return process

    def healthcheck(self, service_name: str) -> subprocess.CompletedProcess:
        """The service's `healthcheck.test`, as Docker runs it in the container."""
        test = self.compose["services"][service_name]["healthcheck"]["test"]
        return subprocess.run(
            self.argv(service_name, healthcheck_argv(test)),
            cwd=self.cwd(service_name),
            env=self.environment(service_name),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def wait_healthy(self, service_name: str, *, timeout: float = 60) -> None:
        last = []

        def healthy() -> bool:
            result = self.healthcheck(service_name)
            last[:] = [result.stderr.strip() or result.stdout.strip()]
            return result.returncode == 0

        try:
            self.processes[service_name].wait_until(healthy, timeout=timeout, what="healthy")
        except Exception as error:
            raise AssertionError(f"{error}\nlast health check said: {last}") from None

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def operator_env() -> dict[str, str]:
    """.env.example filled in as the operator is told to: every empty value a fresh secret."""
    return {name: value or secrets.token_hex(24) for name, value in read_env_file().items()}


def image_environment() -> dict[str, str]:
    env = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ENV":
            for pair in instruction.arguments.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def with_database_index(url: str, index: int) -> str:
    return urlsplit(url)._replace(path=f"/{index}").geturl()


@pytest.fixture(scope="module")
def compose_stack(tmp_path_factory, compose, database_server, redis_url):
    tmp = tmp_path_factory.mktemp("compose")
    stack = ComposeStack(tmp=tmp, dotenv=operator_env(), compose=compose, image_env=image_environment())

    # The Dockerfile's collectstatic step, into the folder standing for the image's /app/static.
    collected = subprocess.run(
        [SH, "deploy/collectstatic.sh", str(tmp / "static")],
        cwd=ROOT,
        env={"PATH": f"{BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert collected.returncode == 0, collected.stderr
    # The compose secret at /run/secrets/oidc_signing_key: a signing key made as docs/deploy.md says.
    key = tmp / "secrets" / "oidc_signing_key"
    if openssl := shutil.which("openssl"):
        key.parent.mkdir(parents=True)
        command = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)]
        subprocess.run(command, capture_output=True, check=True)
    else:
        write_private_file(key, generate_rsa_private_key_pem())

    # The compose network's addresses, as this machine has them: each public URL's host and port
    # (the service's alias and its listening port) becomes 127.0.0.1 and a free port.
    for service_name, variable in WEB.items():
        public = urlsplit(stack.dotenv[variable])
        port = free_port()
        stack.replace[public.netloc] = f"127.0.0.1:{port}"
        stack.replace[declared_environment(compose["services"][service_name])["BIND"]] = f"127.0.0.1:{port}"
        stack.urls[service_name] = f"http://127.0.0.1:{port}"
    stack.overrides = {
        "DATABASE_URL": database_server.new_database("compose_idp"),
        "SITE_A_DATABASE_URL": database_server.new_database("compose_site_a"),
        "SITE_B_DATABASE_URL": database_server.new_database("compose_site_b"),
        # A Redis database of its own: nothing shared with the other tests' stack (their worker,
        # their sessions, their lock-out counters).
        "REDIS_URL": with_database_index(redis_url, 7),
    }
    try:
        for service_name in ONE_SHOT:
            result = stack.run_once(service_name)
            assert result.returncode == 0, f"{service_name} failed:\n{result.stdout}\n{result.stderr}"
            stack.outputs[service_name] = result.stdout + result.stderr
        for service_name in WEB:
            stack.start(service_name)
        for service_name in WEB:
            stack.wait_healthy(service_name)
        stack.worker_before_start = stack.healthcheck("worker")
        for service_name in ["worker", "housekeeping"]:
            stack.start(service_name)
            stack.wait_healthy(service_name)
        yield stack
    finally:
        stack.stop()


def test_compose_refuses_to_start_with_a_secret_unset(compose):
    env = {**operator_env(), "IDP_SECRET_KEY": ""}
    with pytest.raises(MissingVariable, match="IDP_SECRET_KEY"):
        service_environment(compose["services"]["idp"], env)


def test_migrate_and_seed_ran_to_completion_on_all_three_databases(compose_stack):
    from devstack.postgres_server import run_sql

    for variable in ["DATABASE_URL", "SITE_A_DATABASE_URL", "SITE_B_DATABASE_URL"]:
        [(applied,)] = run_sql(compose_stack.overrides[variable], "SELECT count(*) FROM django_migrations")
        assert applied > 10, f"{variable}: migrated"
    seeded = compose_stack.outputs["seed"]
    assert "user alice" in seeded and "client id site-a" in seeded and "client id site-b" in seeded


def test_every_health_check_passes_on_the_running_stack(compose_stack):
    for service_name in LONG_RUNNING:
        result = compose_stack.healthcheck(service_name)
        assert result.returncode == 0, f"{service_name}: {result.stderr}"


def test_the_health_checks_fail_when_there_is_something_wrong(compose_stack):
    before = compose_stack.worker_before_start
    assert before.returncode == 1 and "no worker" in before.stderr, "no worker yet: the worker's check fails"

    heartbeat = compose_stack.tmp_of("housekeeping") / "housekeeping.heartbeat"
    now = time.time()
    os.utime(heartbeat, (now - 8000, now - 8000))
    try:
        result = compose_stack.healthcheck("housekeeping")
        assert result.returncode == 1 and "last touched" in result.stderr
    finally:
        os.utime(heartbeat, (now, now))

    env = {**compose_stack.environment("idp"), "BIND": f"127.0.0.1:{free_port()}"}
    script = ROOT / "deploy" / "healthcheck.py"
    nothing_there = subprocess.run(
        [sys.executable, str(script), "http", "IDP_URL"], env=env, capture_output=True, text=True, check=False
    )
    assert nothing_there.returncode == 1 and "no answer" in nothing_there.stderr


def test_static_files_collected_at_build_time_are_served(compose_stack):
    for service_name in WEB:
        url = f"{compose_stack.urls[service_name]}/"
        page = requests.get(url + ("accounts/login/" if service_name == "idp" else "about/"), timeout=10)
        assert page.status_code == 200, (service_name, page.status_code)
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page.text)
        assert stylesheet, f"{service_name}: the page links a stylesheet"
        assert re.search(r"\.[0-9a-f]{12}\.css$", stylesheet.group(1)), "whitenoise's hashed name (manifest)"
        served = requests.get(urljoin(url, stylesheet.group(1)), timeout=10)
        assert served.status_code == 200 and "text/css" in served.headers["Content-Type"]
        assert "immutable" in served.headers.get("Cache-Control", ""), "served by whitenoise, cached for ever"


def test_the_stack_signs_in_at_site_a_hops_to_site_b_and_signs_out_of_both(compose_stack):
    site_a, site_b, idp = (compose_stack.urls[name] for name in ("site_a", "site_b", "idp"))
    person = Visitor()
    at_a = person.sign_in(f"{site_a}/", "alice", compose_stack.dotenv["DEMO_PASSWORD"])
    assert at_a.page.url == f"{site_a}/"
    assert signed_in_page_shows_alice(at_a.page)

    at_b = person.visit(f"{site_b}/")
    assert signed_in_page_shows_alice(at_b.page)
    assert not at_b.shows_login_form()
    assert at_b.redirects == 3, "B → the IdP's authorize → B's callback → B's home, no page in between"
    assert urlsplit(at_b.urls[1]).path == "/o/authorize/"

    signed_out = person.sign_out_at_site(site_a)
    assert urlsplit(signed_out.urls[2]).path == "/o/logout/", "the sign-out goes through the IdP"
    assert signed_out.page.url.split("?")[0] == f"{site_a}/sso/signed-out/"
    assert person.visit(f"{site_b}/").shows_login_form(), "site B was told by back-channel logout"
    assert person.visit(f"{idp}/").shows_login_form(), "the IdP session is gone too"


# --- PostgreSQL and Redis: the set-up script and the health checks ----------------------------------


def server_parts(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres"


def test_the_postgres_init_script_makes_one_role_and_database_each(compose, database_server):
    """deploy/postgres/create-databases.sh, as the postgres image runs it, on the tests' server."""
    if database_server.kind != "postgresql":
        pytest.skip("the tests run on SQLite: no PostgreSQL server to run the script on")
    if not shutil.which("psql"):
        pytest.skip("no psql here")
    import psycopg
    from psycopg import sql

    admin_url = database_server.new_database("compose_init")
    host, port, user = server_parts(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        [(allowed,)] = connection.execute(
            "SELECT rolsuper OR (rolcreaterole AND rolcreatedb) FROM pg_roles WHERE rolname = current_user"
        ).fetchall()
        if not allowed:
            pytest.skip("the tests' database user may not create roles")
    suffix = secrets.token_hex(4)
    names = [f"compose_{part}_{suffix}" for part in ("idp", "site_a")]
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": host,
        "PGPORT": str(port),
        "POSTGRES_USER": user,
        "POSTGRES_DB": urlsplit(admin_url).path.lstrip("/"),
        "APP_DATABASES": " ".join(names),
        **{f"{name.upper()}_DB_PASSWORD": secrets.token_hex(16) for name in names},
    }
    script = ROOT / "deploy" / "postgres" / "create-databases.sh"
    try:
        for _ in range(2):  # safe to run again
            result = subprocess.run([BASH, str(script)], env=env, capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stderr
        with psycopg.connect(admin_url) as connection:
            rows = connection.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)", (names,)
            ).fetchall()
        assert sorted(rows) == sorted((name, name) for name in names), "each database owned by its own role"
        own = urlsplit(admin_url)._replace(netloc=f"{names[1]}@{host}:{port}", path=f"/{names[1]}").geturl()
        with psycopg.connect(own) as connection:
            connection.execute("CREATE TABLE owned_here (id int)")
        other = urlsplit(own)._replace(path=f"/{names[0]}").geturl()
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(other)
        missing = {**env, f"{names[0].upper()}_DB_PASSWORD": ""}
        refused = subprocess.run([BASH, str(script)], env=missing, capture_output=True, text=True, check=False)
        assert refused.returncode != 0 and f"{names[0].upper()}_DB_PASSWORD" in refused.stderr

        # The service's health check, as written, pointed at this server.
        test = compose["services"]["postgres"]["healthcheck"]["test"]
        argv = [
            arg.replace("--port=5432", f"--port={port}").replace("127.0.0.1", host) for arg in healthcheck_argv(test)
        ]
        if shutil.which(argv[0]):
            assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            for name in names:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_the_redis_health_check_as_written(compose, redis_url):
    if not shutil.which("redis-cli"):
        pytest.skip("no redis-cli here")
    parts = urlsplit(redis_url)
    if parts.password:
        pytest.skip("REDIS_URL has a password; the check reads it from REDISCLI_AUTH in the container")
    test = compose["services"]["redis"]["healthcheck"]["test"]
    argv = [
        arg.replace("-h 127.0.0.1", f"-h {parts.hostname}").replace("-p 6379", f"-p {parts.port or 6379}")
        for arg in healthcheck_argv(test)
    ]
    env = {"PATH": os.environ["PATH"]}
    assert subprocess.run(argv, env=env, capture_output=True, check=False).returncode == 0
    argv_down = [arg.replace(f"-p {parts.port or 6379}", f"-p {free_port()}") for arg in argv]
    assert subprocess.run(argv_down, env=env, capture_output=True, check=False).returncode != 0
