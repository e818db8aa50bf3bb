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

# The controller's tools, the docs toolchain and the scoring package's exact
# dependencies share one venv, so the application tests run against the versions
# the worker image ships.
LOCKS := requirements/controller.lock requirements/docs.lock app/requirements.lock app/requirements-dev.txt

# The sandbox runs a release of the current checkout, rebuilt when app/ or docker/ change.
PROJECT := is24de
SANDBOX_RELEASE := build/images/$(PROJECT)-worker-sandbox.tar.gz
SANDBOX_SOURCES := $(wildcard $(shell git ls-files --cached --others --exclude-standard app docker 2>/dev/null))

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
lint: venv ## ansible-lint (production profile), yamllint, ruff, import-linter (app layers)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd app && PYTHONPATH=$(CURDIR)/app $(CURDIR)/$(BIN)/lint-imports --no-cache

.PHONY: pytest
pytest: venv ## Controller-side and application tests
	$(BIN)/pytest

.PHONY: release-image
release-image: venv ## The worker image the test master runs, as an archive (build/images/)
	molecule/images/build worker-base
	app/deploy/build_release molecule --base-image scoring-test/worker-base:latest \
	  --save build/images/is24de-worker-molecule.tar.gz

.PHONY: lock
lock: ## Re-resolve requirements/*.lock from their .in files in clean temporary venvs
	$(MAKE) lock-controller lock-docs

# Each lock is `pip freeze` of a fresh venv holding just its .in; the docs toolchain
# is resolved within the pins of the locks it shares the venv with.
.PHONY: lock-controller
lock-controller:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(PYTHON) -m venv "$$tmp" \
	  && "$$tmp/bin/pip" install --quiet pip==25.3 \
	  && "$$tmp/bin/pip" install --quiet -r requirements/controller.in \
	  && { echo '# Controller toolchain, every package pinned (regenerate with: make lock).'; \
	       "$$tmp/bin/pip" freeze; } >requirements/controller.lock

.PHONY: lock-docs
lock-docs:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(PYTHON) -m venv "$$tmp" \
	  && "$$tmp/bin/pip" install --quiet pip==25.3 \
	  && cat requirements/controller.lock app/requirements.lock app/requirements-dev.txt \
	     | grep -E '^[A-Za-z0-9_.-]+==' >"$$tmp/constraints.txt" \
	  && "$$tmp/bin/pip" install --quiet -c "$$tmp/constraints.txt" -r requirements/docs.in \
	  && { echo '# Documentation toolchain, every package pinned (regenerate with: make lock).'; \
	       "$$tmp/bin/pip" freeze; } >requirements/docs.lock

.PHONY: role-readmes
role-readmes: venv ## Rewrite the generated reference of every roles/<role>/README.md from its specs
	$(BIN)/python docs/_ext/role_reference.py --readmes roles

.PHONY: docs
docs: venv ## Build the documentation (docs/) into build/docs; any warning fails
	$(BIN)/sphinx-build -W --keep-going -q -b html docs build/docs

$(SANDBOX_RELEASE): $(SANDBOX_SOURCES) | $(BIN)/.installed
	molecule/images/build worker-base
	app/deploy/build_release sandbox --base-image scoring-test/worker-base:latest --save $@

.PHONY: sandbox
sandbox: venv $(SANDBOX_RELEASE) ## A local master in a container with a demo member; see README
	molecule/images/build master
	$(BIN)/ansible-playbook -i inventory/sandbox sandbox/up.yml

.PHONY: sandbox-down
sandbox-down: venv ## Remove the sandbox's container, volume and network, and .sandbox/
	$(BIN)/ansible-playbook -i inventory/sandbox sandbox/down.yml

# Refuses to run beside a sandbox that is already up: it would take its ports and name.
.PHONY: sandbox-test
sandbox-test: venv ## `make sandbox` from scratch, checked through its forwards, then `make sandbox-down`
	$(BIN)/pytest -p no:cacheprovider sandbox/tests

.PHONY: molecule
molecule: venv images release-image ## Every Molecule scenario, from create to destroy
	$(BIN)/molecule test --all

# The long steps share the two cores in two lanes, each line of output prefixed by its
# step: the default scenario in one; the controller and application tests, the
# scale-out scenario and the sandbox in the other (their hosts have names of their
# own). Everything both lanes need is built before they start. When a step fails, what
# failed is repeated at the end (tests/testlib/failures.py).
STEP := tests/testlib/step.sh
.PHONY: test
test: lint docs images release-image $(SANDBOX_RELEASE) ## Everything CI runs: lint, docs, pytest, every Molecule scenario, the sandbox
	rm -rf .cache/test-results
	$(MAKE) --no-print-directory -j2 test-lane-default test-lane-other \
	  || { $(BIN)/python tests/testlib/failures.py .cache/test-results; exit 1; }

.PHONY: test-lane-default test-lane-other
test-lane-default:
	$(STEP) default $(BIN)/molecule test -s default

test-lane-other:
	$(STEP) pytest $(BIN)/pytest
	$(STEP) scaleout $(BIN)/molecule test -s scaleout
	$(STEP) sandbox $(BIN)/pytest -p no:cacheprovider sandbox/tests

# Replaces a running sandbox with a new one (and leaves that one up).
.PHONY: bench-provisioning
bench-provisioning: venv images $(SANDBOX_RELEASE) ## Time a new sandbox and a re-run of site.yml on it; append to docs/benchmarks/
	$(BIN)/python benchmarks/provisioning.py sandbox

.PHONY: bench-provisioning-molecule
bench-provisioning-molecule: venv images release-image ## The same on the Molecule default scenario's hosts
	$(BIN)/python benchmarks/provisioning.py molecule

.PHONY: clean
clean: ## Remove the venv and caches (test images stay; `docker rmi` them by hand)
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
