# The two README commands: `make demo` and `make test`. Both build the venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo
export NIPYPE_NO_ET := 1

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	$(VENV)/bin/pip check
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m taupet_bids.demo $(DEMO_DIR)

# `make test` runs every tier (what CI runs: .ci/run) after installing the Debian packages the
# tests use for real: Chromium renders the HTML reports (tests/test_reports.py) and, as root, a
# one-node Slurm cluster runs the HPC array (tests/test_slurm.py starts its daemons as root, so
# for another user it is skipped with the reason). As root, a Slurm that cannot start fails the
# test instead of skipping it; `make test TAUPET_REQUIRE_SLURM=0` allows the skip.
# `make test-fast` runs the unit tier only (no system packages, under two minutes); the tiers are
# pytest markers, assigned in tests/conftest.py (docs/development.md).
TAUPET_REQUIRE_SLURM ?= $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)
export TAUPET_REQUIRE_SLURM

test-deps:
	bash .ci/install-chromium.sh
ifeq ($(TAUPET_REQUIRE_SLURM),1)
	bash .ci/install-slurm.sh
endif

# Test files run in TEST_WORKERS processes (pytest-xdist), each file whole in one of them so its
# module fixtures (a simulated cohort, a participant run) are built once; CI has 2 cores.
TEST_WORKERS ?= 2

test: $(VENV)/.installed test-deps
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not integration and not e2e" tests

# lint-imports checks the import contracts of .importlinter (the layers of the package).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check taupet_bids tests benchmarks
	$(VENV)/bin/ruff format --check taupet_bids tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

.PHONY: venv demo test test-deps test-fast lint

# The real container test (root, podman + buildah + debootstrap + runc; ~5 min on 2 cores): builds
# the image from a local debootstrap base (no registry pull) and runs it on a simulated
# participant with a read-only input mount and no network. See docs/containers.md.
container-test: $(VENV)/.installed
	containers/build.sh
	containers/run-check.sh 1

.PHONY: container-test
