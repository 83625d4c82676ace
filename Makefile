# The two commands: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FLASK := $(VENV)/bin/flask --app mediation
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 5000
# `make test` runs the suite in this many processes (pytest-xdist; 0: in one)
PYTEST_WORKERS ?= 2
export MEDIATION_ENV ?= development

.PHONY: run test lint format install translations messages bench clean serve seed \
	cluster cluster-stop cluster-status

$(VENV)/.installed: setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
	@fc-list 2>/dev/null | grep -qi "Noto Serif CJK" || echo "make: the award PDF needs the Noto CJK fonts and Pango: apt-get install fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0" >&2

translations: install
	$(VENV)/bin/pybabel -q compile -d mediation/translations

messages: install
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext -o mediation/translations/messages.pot .
	$(VENV)/bin/pybabel -q update -i mediation/translations/messages.pot -d mediation/translations --no-fuzzy-matching

run: install translations
	mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty
	SCHEDULER_ENABLED=$${SCHEDULER_ENABLED:-1} $(FLASK) serve --host $(HOST) --port $(PORT)

test: install translations
	$(VENV)/bin/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check mediation tests benchmarks
	$(VENV)/bin/ruff format --check mediation tests benchmarks

format: install
	$(VENV)/bin/ruff format mediation tests benchmarks
	$(VENV)/bin/ruff check --fix mediation tests benchmarks

bench: install translations
	$(PY) benchmarks/filing.py
	$(PY) benchmarks/sweep.py
	$(PY) benchmarks/chat.py
	$(PY) benchmarks/credit.py
	$(PY) benchmarks/dashboard.py
	$(PY) benchmarks/risk.py
	$(PY) benchmarks/cluster.py

# nginx, two server processes and the scheduler on the local PostgreSQL and Redis
# (deploy/README.md); CLUSTER_PORT, CLUSTER_APP_PORTS, CLUSTER_DATABASE_URL and
# CLUSTER_REDIS_URL change the defaults. Files and pids under instance/cluster/.
cluster: install translations
	$(PY) deploy/cluster.py start

cluster-stop:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) deploy/cluster.py stop

cluster-status:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) deploy/cluster.py status

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
