# Quick start, tests and checks of the BJGas operations platform. `make help` lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help venv messages static run demo migrate test lint format check

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PYTHON VENV

# The demo loader logs every workflow step it takes; keep the quick start readable.
DEMO_LOG_LEVEL = LOG_LEVEL=$${LOG_LEVEL:-WARNING}

help:
	@echo "make run     install if needed, migrate, load demo data, start web + worker on :$(PORT)"
	@echo "make demo    migrate and load the demo data only"
	@echo "make test    run the whole test suite (PYTEST_ARGS='-k name' to choose)"
	@echo "make lint    ruff format --check and ruff check"
	@echo "make format  format the code and apply ruff's safe fixes"
	@echo "make check   Django system checks and missing migrations"
	@echo "make static  collectstatic, when packages or static files changed"
	@echo "Settings come from the environment (DATABASE_URL, REDIS_URL, PORT...; see README.md)."
	@echo "Without DATABASE_URL the data lives in SQLite under sites/."

venv:
	@scripts/ensure-venv.sh

# Compile the translations (.po -> .mo) when there are any; compilemessages skips the
# files that are already up to date.
messages: venv
	@if [ -n "$$(find apps locale -name '*.po' 2>/dev/null | head -n1)" ]; then \
		if command -v msgfmt >/dev/null; then \
			$(BIN)/python manage.py compilemessages -v0 --ignore '.venv*'; \
		else \
			echo "gettext's msgfmt is missing: the product's own labels stay in English."; \
			echo "Install it (Debian: apt-get install gettext) and run make again."; \
		fi; \
	fi

migrate: venv messages
	$(BIN)/python manage.py ensure_database
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(DEMO_LOG_LEVEL) $(BIN)/python manage.py load_demo_data --logins

# collectstatic compresses about a thousand files: only redo it when the installed
# packages or the project's own static files changed since the last time.
STATIC_DIR := $(or $(STATIC_ROOT),staticfiles)
STATIC_STAMP := $(STATIC_DIR)/.bjgas-collected
$(STATIC_STAMP): $(VENV)/.bjgas-installed $(shell find apps -path '*/static/*' -type f 2>/dev/null)
	$(BIN)/python manage.py collectstatic --noinput -v0
	@touch $@

static: venv
	@$(MAKE) -s --no-print-directory $(STATIC_STAMP)

run: migrate static
	$(DEMO_LOG_LEVEL) $(BIN)/python manage.py load_demo_data --logins
	@echo "Starting http://127.0.0.1:$(PORT)/ (web: gunicorn; worker: celery with beat). Ctrl-C stops both."
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --port $(PORT)

test: venv messages
	@rc=0; $(BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "pytest collected no tests: counted as a failure." >&2; fi; \
		exit $$rc

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: venv
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
