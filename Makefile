# The verbs: make run, make test, make bench, make lint. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
RUNTIME_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
TEST_DEBS := $(RUNTIME_DEBS) poppler-utils chromium
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_LOOP ?= 1
PYTEST_ARGS ?=

.PHONY: run test lint format bench bench-data screenshots install clean

# Debian's python3 needs python3-venv for this.
$(PY):
	python3 -m venv $(VENV) 2>/dev/null || { .ci/system-deps python3-venv && python3 -m venv $(VENV); }

$(UV): | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check uv

# Re-installs when the lock or the project metadata changes.
$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	$(UV) pip install -q --compile-bytecode --python $(PY) -r requirements.lock
	$(UV) pip install -q --compile-bytecode --python $(PY) --no-deps -e .
	touch $@

install: $(VENV)/.installed
	@.ci/system-deps $(RUNTIME_DEBS)

run: install
	$(PY) manage.py migrate --noinput -v0
	@if $(PY) manage.py help seed_demo >/dev/null 2>&1; then $(PY) manage.py seed_demo; fi
	$(PY) manage.py runstack --host $(HOST) --port $(PORT) --demo-loop $(DEMO_LOOP)

test: $(VENV)/.installed
	@.ci/system-deps $(TEST_DEBS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run -v1
	.ci/with-services bash -c 'CELERY_TASK_ALWAYS_EAGER=true DJANGO_ALLOW_ASYNC_UNSAFE=true \
	  $(PY) -m pytest $(PYTEST_ARGS)'

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Starts the demo on a free port and writes PNGs of the main pages to screenshots/.
screenshots: install
	@.ci/system-deps chromium
	$(PY) tests/e2e/screenshots.py

# Builds the benchmark practice once (untimed) into a template database on a private
# PostgreSQL under var/bench/; `make bench` copies it and measures.
bench-data: $(VENV)/.installed
	$(PY) -m tests.bench.data

bench: $(VENV)/.installed
	$(PY) -m tests.bench.run

clean:
	rm -rf $(VENV) var db.sqlite3 screenshots
