"""Shared fixtures. TemplateFlow reads TEMPLATEFLOW_HOME once, at import: set it first."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("NIPYPE_NO_ET", "1")

from taupet_bids import templates  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def templateflow_home() -> Path:
    """A TemplateFlow home bootstrapped offline (reused between runs on one machine)."""
    return templates.ensure_templateflow()


@pytest.fixture(scope="session")
def pet002_dir() -> Path:
    """Real BIDS-PET sidecars from the official bids-examples dataset pet002 (CC0)."""
    return DATA / "pet002"
