# The two commands a newcomer needs are `make sandbox` and `make test`; the rest
# are the steps they are made of.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# The controller's tools and the scoring package's exact dependencies share one venv,
# so the application tests run against the versions the worker image ships.
LOCKS := requirements/controller.lock app/requirements.lock app/requirements-dev.txt

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: $(LOCKS) app/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet $(addprefix -r ,$(LOCKS))
	$(BIN)/pip install --quiet --no-deps --editable app
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Build .venv from the pinned requirements

.PHONY: images
images: ## Build the test host images from Debian packages (cached by recipe)
	molecule/images/build

.PHONY: lint
lint: venv ## ansible-lint (production profile), yamllint, ruff
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: pytest
pytest: venv ## Controller-side and application tests
	$(BIN)/pytest

.PHONY: release-image
release-image: venv ## The worker image the test master runs, as an archive (build/images/)
	molecule/images/build worker-base
	app/deploy/build_release molecule --base-image scoring-test/worker-base:latest \
	  --save build/images/is24de-worker-molecule.tar.gz

.PHONY: molecule
molecule: venv images release-image ## Every Molecule scenario, from create to destroy
	$(BIN)/molecule test --all

.PHONY: test
test: lint pytest molecule ## Everything CI runs: lint, pytest, molecule

.PHONY: bench-provisioning
bench-provisioning: venv images ## Time a cold and an idempotent converge; append to docs/benchmarks/
	$(BIN)/python benchmarks/provisioning.py

.PHONY: clean
clean: ## Remove the venv and caches (test images stay; `docker rmi` them by hand)
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
