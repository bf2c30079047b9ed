# The two commands a newcomer needs are `make run` and `make test`; `make help` lists the rest.
# Everything installs itself: a virtual environment in .venv from the one lock, requirements.txt.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help system-packages run test test-unit test-e2e lint format lock bench soak clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt sso_client/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e ./sso_client
	touch $@

system-packages: ## Install what the tests drive and run on (Debian's chromium and postgresql) when root or sudo with apt can
	@chromium=; postgresql=; \
	[ -x $(CHROMIUM) ] || chromium=chromium; \
	if [ -z "$$TEST_DATABASE_URL" ] && ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  postgresql=postgresql; \
	fi; \
	[ -n "$$chromium$$postgresql" ] || exit 0; \
	if ! command -v apt-get >/dev/null; then SUDO=none; \
	elif [ "$$(id -u)" -eq 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	if [ "$$SUDO" = none ]; then \
	  [ -z "$$postgresql" ] || echo "note: no PostgreSQL server binaries (initdb, postgres), and no apt as root to install them: the tests run on SQLite; set TEST_DATABASE_URL to run them on a PostgreSQL server"; \
	  exit 0; \
	fi; \
	$$SUDO apt-get update -qq || exit 1; \
	if [ -n "$$chromium" ]; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null || exit 1; \
	fi; \
	if [ -n "$$postgresql" ]; then \
	  echo "Installing Debian's postgresql: the tests start a private server of their own with its initdb and postgres"; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null \
	    || echo "note: installing postgresql failed: the tests run on SQLite"; \
	fi

run: $(STAMP) ## Serve the IdP on :8000 and client sites A and B on :8001 and :8002 until Ctrl-C
	$(PY) -m devstack.run

test: $(STAMP) system-packages ## Run every test: unit tests, then end-to-end tests with real processes and Chromium
	@test -x $(CHROMIUM) || { echo "error: the browser tests need Chromium at $(CHROMIUM) (Debian: apt-get install chromium), or set CHROMIUM"; exit 1; }
	$(MAKE) --no-print-directory test-unit test-e2e

test-unit: $(STAMP) ## Unit tests of each part, each with its own Django settings
	PYTHONPATH=.:idp $(PY) -m pytest tests/idp --ds tests.idp.settings
	$(PY) -m pytest tests/sso_client --ds tests.sso_client.settings

test-e2e: $(STAMP) ## End-to-end tests: real redis-server, real gunicorn processes, real Chromium
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests/e2e --durations=15

bench: $(STAMP) ## Benchmarks (not tests): throughput per server core and latency of each flow (BENCH_ARGS=--help)
	@command -v wrk >/dev/null || { \
	  if ! command -v apt-get >/dev/null; then SUDO=none; \
	  elif [ "$$(id -u)" -eq 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" = none ]; then echo "error: make bench needs wrk (Debian: apt-get install wrk), and cannot install it here"; exit 1; fi; \
	  echo "Installing Debian's wrk for the benchmarks"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null \
	    || { echo "error: installing wrk failed; make bench needs it"; exit 1; }; }
	$(PY) -m bench.run $(BENCH_ARGS)

soak: $(STAMP) system-packages ## Soak: 200 virtual people for minutes, every fault injected, a JSON and Markdown report (SOAK_ARGS=--help)
	$(PY) -m soak.run $(SOAK_ARGS)

lint: $(STAMP) ## Check style with ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP) ## Rewrite files in ruff's style
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

lock: ## Re-resolve requirements.in into the lock, requirements.txt
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	{ echo "# The project's one lock: every direct and indirect dependency, pinned."; \
	  echo "# Generated from requirements.in by \`make lock\`; do not edit by hand."; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v "^pip=="; } > requirements.txt
	rm -rf .lock-venv

clean: ## Remove the virtual environment and local state (database, keys, Redis files)
	rm -rf $(VENV) .local
