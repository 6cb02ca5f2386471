# dagfleet: every target is a thin call of the CLI or of the test runner.
SHELL := /bin/bash
UV := PATH="$$HOME/.local/bin:$$PATH" uv
DAGFLEET := $(UV) run --frozen dagfleet
PYTEST_ARGS ?=

.PHONY: install up test lint add-repo update-repo remove-repo list-repos repo-logs \
        dev-with-repos dev-add-repo sync-repos

install:
	@scripts/bootstrap

## The embedded default: medallion in environments A and B, UI on 127.0.0.1:3000.
up: install
	$(DAGFLEET) up

## The whole suite: lint, types, unit, integration and e2e tests.
test: install
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen mypy
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen mypy

# Seed 004's repository manager targets.
add-repo: install
	$(DAGFLEET) repo add "$(REPO_NAME)" --git-url "$(REPO_URL)" $(if $(BRANCH),--branch "$(BRANCH)")

update-repo: install
	$(DAGFLEET) repo update "$(REPO_NAME)"

remove-repo: install
	$(DAGFLEET) repo remove "$(REPO_NAME)"

list-repos: install
	$(DAGFLEET) repo list

repo-logs: install
	$(DAGFLEET) repo logs "$(REPO_NAME)" $(if $(ENV),--env "$(ENV)")

dev-with-repos: up

dev-add-repo: add-repo

sync-repos: install
	$(DAGFLEET) sync
