"""Shared fixtures. TemplateFlow reads TEMPLATEFLOW_HOME once, at import: set it first."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("NIPYPE_NO_ET", "1")

from taupet_bids import templates  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"

# Test tiers (pytest markers registered in pyproject.toml; docs/development.md). A module not
# listed here is a unit test: `make test-fast` runs those alone, `make test` runs every tier. A
# test marked with a tier itself (e.g. one slow test of a unit module) keeps its marker.
TIERS = {
    # Run the real command line over a simulated cohort: taupet-bids, the report, Slurm.
    "e2e": {
        "test_classify_cli",
        "test_harmonize_cli",
        "test_participant",
        "test_mrless_pipeline",
        "test_reports",
        "test_slurm",
        "test_stop",
        "test_entities_cli",
        "test_synthesis_cli",
        "test_synthesis_fdg_cli",
    },
    # Run antspyx registrations, MONAI's bundle runner, training or whole simulated cohorts.
    "integration": {
        "test_ants_baseline",
        "test_bundle",
        "test_classification_bundle",
        "test_classification_training",
        "test_interfaces_motion",
        "test_interfaces_registration",
        "test_geometry_qc",
        "test_mrless",
        "test_mrless_refinement",
        "test_mrless_speed",
        "test_reportlets",
        "test_simulate",
        "test_simulate_modalities",
        "test_synthesis",
        "test_synthesis_networks",
        "test_synthesis_vqgan",
        "test_synthesis_tasks",
        "test_synthesis_diffusion",
        "test_training_realistic_heads",
    },
}


#: The order `make test` starts the tiers in (slowest first).
RUN_ORDER = ("e2e", "integration", "unit")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    listed = set().union(*TIERS.values())
    gone = listed - {path.stem for path in Path(__file__).parent.glob("test_*.py")}
    if gone:  # a renamed slow module would silently join the fast tier
        raise pytest.UsageError(f"tests/conftest.py TIERS names missing modules: {sorted(gone)}")
    for item in items:
        if any(item.get_closest_marker(name) for name in ("unit", *TIERS)):
            continue
        item.add_marker(_module_tier(item.path.stem))
    # Slowest tier first, files kept whole: `make test` hands files to two processes in this
    # order, and long files started last would leave one process running alone at the end.
    items.sort(key=lambda item: RUN_ORDER.index(_module_tier(item.path.stem)))


def _module_tier(module: str) -> str:
    return next((name for name, modules in TIERS.items() if module in modules), "unit")


@pytest.fixture(scope="session")
def templateflow_home() -> Path:
    """A TemplateFlow home bootstrapped offline (reused between runs on one machine)."""
    return templates.ensure_templateflow()


@pytest.fixture(scope="session")
def pet002_dir() -> Path:
    """Real BIDS-PET sidecars from the official bids-examples dataset pet002 (CC0)."""
    return DATA / "pet002"
