# dagfleet: every target is a thin call of the CLI or of the test runner.
SHELL := /bin/bash
UV := PATH="$$HOME/.local/bin:$$PATH" uv
DAGFLEET := $(UV) run --frozen dagfleet
PYTEST_ARGS ?=
# FLEET=DIR: the fleet directory for `up` and the repo targets (default: the CLI's own
# discovery from this directory: ./fleet.yaml, else ./.dagfleet). The API address and
# token come from DAGFLEET_API_URL and DAGFLEET_API_TOKEN, as for the CLI.
FLEET ?=
FLEET_ARG = $(if $(FLEET),--fleet "$(FLEET)")

.PHONY: install up test test-fast lint dist add-repo update-repo remove-repo list-repos repo-logs \
        dev-with-repos dev-add-repo sync-repos

install:
	@scripts/bootstrap

## The embedded default: medallion in environments A and B, UI on 127.0.0.1:3000.
up: install
	$(DAGFLEET) up $(FLEET_ARG)

## The whole suite: lint, types, unit, integration and e2e tests.
test: install
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports
	scripts/test-deps
	$(UV) run --frozen pytest $(PYTEST_ARGS)

## Unit and integration tests without the slow ones (every e2e scenario is slow).
test-fast: install
	scripts/test-deps
	$(UV) run --frozen pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

## Versioned wheels (and sdists) of dagfleet and dagfleet-runtime in dist/, one version
## (packages/dagfleet-runtime/pyproject.toml). Install: uv tool install --find-links dist dagfleet
dist:
	@DAGFLEET_BOOTSTRAP_ONLY_UV=1 scripts/bootstrap
	rm -rf dist
	$(UV) build --out-dir dist
	$(UV) build --out-dir dist packages/dagfleet-runtime

# Seed 004's repository manager targets.
add-repo: install
	$(DAGFLEET) repo add "$(REPO_NAME)" --git-url "$(REPO_URL)" $(if $(BRANCH),--branch "$(BRANCH)") $(FLEET_ARG)

update-repo: install
	$(DAGFLEET) repo sync "$(REPO_NAME)" $(FLEET_ARG)

remove-repo: install
	$(DAGFLEET) repo remove "$(REPO_NAME)" $(FLEET_ARG)

list-repos: install
	$(DAGFLEET) repo list $(FLEET_ARG)

repo-logs: install
	$(DAGFLEET) repo logs "$(REPO_NAME)" $(if $(ENV),--env "$(ENV)") $(FLEET_ARG)

dev-with-repos: up

dev-add-repo: add-repo

sync-repos: install
	$(DAGFLEET) sync $(FLEET_ARG)
