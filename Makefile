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

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check taupet_bids tests benchmarks
	$(VENV)/bin/ruff format --check taupet_bids tests benchmarks

.PHONY: venv demo test lint

# The real container test (root, podman + buildah + debootstrap + runc; ~5 min on 2 cores): builds
# the image from a local debootstrap base (no registry pull) and runs it on a simulated
# participant with a read-only input mount and no network. See docs/containers.md.
container-test: $(VENV)/.installed
	containers/build.sh
	containers/run-check.sh 1

.PHONY: container-test
