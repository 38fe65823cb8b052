# Two commands matter: `make run` (the whole local stack) and `make test` (the whole suite).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AGENT_SRC := agent_js/src/agent.js agent_js/src/dashboard.js agent_js/src/dashboard.css agent_js/build.mjs agent_js/package.json
AGENT_OUT := agent_js/dist/agent.min.js

.PHONY: run test lint unit bench agent assets influxd system-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,grafana]'
	@touch $(STAMP)

system-deps:
	@scripts/system-deps.sh

agent_js/node_modules/.package-lock.json: agent_js/package.json agent_js/package-lock.json
	cd agent_js && npm ci --no-audit --no-fund --loglevel=error

$(AGENT_OUT): $(AGENT_SRC) agent_js/node_modules/.package-lock.json
	cd agent_js && npm run --silent build

# Build the agent and dashboard into agent_js/dist (a test checks the package's copies against it).
agent: $(AGENT_OUT)

# After changing agent_js/src, nginx/ or grafana/: copy them into the package, then commit.
assets: agent
	$(PY) scripts/package_assets.py

influxd:
	@scripts/influxd.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check analytics_bp tests bench grafana
	$(VENV)/bin/mypy

test: system-deps $(STAMP) agent
	@INFLUXD="$$(scripts/influxd.sh)" && export INFLUXD && \
	$(MAKE) --no-print-directory lint && \
	$(VENV)/bin/pytest -q -p no:cacheprovider

run: system-deps $(STAMP)
	@INFLUXD="$$(scripts/influxd.sh)" && export INFLUXD && exec $(PY) -m analytics_bp.dev.devstack

bench: system-deps $(STAMP) agent
	@INFLUXD="$$(scripts/influxd.sh)" && export INFLUXD && exec $(PY) bench/run.py

clean:
	rm -rf $(VENV) .run agent_js/dist agent_js/node_modules
