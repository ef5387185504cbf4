# Archway — the two commands are `make run` and `make test`; the rest are helpers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432

.PHONY: run test test-sqlite test-postgres lint fuzz bench openapi protos proto-snapshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, migrate, seed and serve the monolith on SQLite at http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/archway dev

## Set up and run the whole suite: lint, import contracts, strict types, then tests (with the fuzz) on SQLite and PostgreSQL
test: $(STAMP) lint test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/buf lint proto
	$(BIN)/lint-imports
	$(BIN)/mypy

test-sqlite: $(STAMP)
	@echo "=== tests on SQLite (a temporary file) ==="
	ARCHWAY_TEST_DATABASE_URL= $(BIN)/python -m pytest -q

test-postgres: $(STAMP)
	@if [ -z "$$CI" ] && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		echo "!!! PostgreSQL is not running on 127.0.0.1:5432: SKIPPING the PostgreSQL run !!!"; \
	else \
		db=archway_test_$$$$; \
		echo "=== tests on PostgreSQL: $(PG_URL)/$$db ==="; \
		psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $$db" && \
		ARCHWAY_TEST_DATABASE_URL=$(PG_URL)/$$db $(BIN)/python -m pytest -q; \
		status=$$?; \
		psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $$db WITH (FORCE)"; \
		exit $$status; \
	fi

## Schemathesis against a real server on SQLite (tests/fuzz); FUZZ_DATABASE_URL=postgresql+asyncpg://… for PostgreSQL
fuzz: $(STAMP)
	ARCHWAY_TEST_DATABASE_URL=$(FUZZ_DATABASE_URL) $(BIN)/python -m pytest -q -m fuzz tests/fuzz

## Benchmarks (wrk); see bench/README.md
bench: $(STAMP)
	$(BIN)/python bench/run.py

## Regenerate the committed OpenAPI snapshots (after a deliberate, compatible change)
openapi: $(STAMP)
	$(BIN)/python -m archway.tools.openapi_snapshot write

## Regenerate the gRPC stubs in src/archway/proto from proto/ (the suite checks they are current)
protos: $(STAMP)
	$(BIN)/python -m archway.tools.protos write

## Record proto/ as the snapshot `buf breaking` checks v1 against (after a deliberate, compatible change)
proto-snapshot: $(STAMP)
	$(BIN)/python -m archway.tools.protos snapshot

clean:
	rm -rf $(VENV) archway.db archway.db-wal archway.db-shm
