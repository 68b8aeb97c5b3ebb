"""The import contracts (.importlinter, run by `make lint`) hold, cover the package and bite.

Each forbidden import is added to a copy of the package, and the linter, run on that copy, must
break exactly the contract that forbids it: a contract that cannot fail would prove nothing.
"""

from __future__ import annotations

import configparser
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import taupet_bids

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".importlinter"
PACKAGE = Path(taupet_bids.__file__).parent
#: Top-level modules outside the product: the fixtures' code and `make demo` (demo, demo_synthesis,
#: demo_harmonisation), which uses both.
NOT_PRODUCT = {"simulate", "training", "demo", "demo_synthesis", "demo_harmonisation"}
PRODUCT = "product-without-fixtures"


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contracts on the ``taupet_bids`` found in ``root``."""
    command = [Path(sys.executable).with_name("lint-imports"), str(CONFIG), "--no-cache"]
    command += [f"--contract={contract}" for contract in contracts]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)


def package_copy(root: Path) -> Path:
    """The package's Python files under ``root`` (data files are not imports)."""

    def not_python(folder: str, names: list[str]) -> list[str]:
        return [
            name
            for name in names
            if name == "__pycache__" or (not name.endswith(".py") and Path(folder, name).is_file())
        ]

    shutil.copytree(PACKAGE, root / "taupet_bids", ignore=not_python)
    return root


def test_the_tree_keeps_every_contract() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_product_contract_lists_every_product_module() -> None:
    """A new top-level module must be placed: listed as product, or named here as a fixture."""
    config = configparser.ConfigParser()
    config.read(CONFIG)
    listed = config[f"importlinter:contract:{PRODUCT}"]["source_modules"].split()
    top_level = {module.name for module in pkgutil.iter_modules([str(PACKAGE)])}
    assert {name.removeprefix("taupet_bids.") for name in listed} == top_level - NOT_PRODUCT


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/images.py", "import nipype", "plain-core"),
        ("core/pvc.py", "import torch", "plain-core"),
        ("core/grids.py", "from taupet_bids.interfaces import frames", "layers"),
        ("interfaces/frames.py", "from taupet_bids.workflows import pet", "layers"),
        ("normalisation/geometry.py", "from taupet_bids.interfaces import mrless", "layers"),
        ("normalisation/geometry.py", "import nipype", "plain-normalisation"),
        ("normalisation/geometry.py", "from taupet_bids.simulate import anatomy", PRODUCT),
        ("classification/networks.py", "import nipype", "plain-classification"),
        ("classification/preprocessing.py", "from taupet_bids.normalisation import qc", "layers"),
        ("classification/inference.py", "from taupet_bids.training import engine", PRODUCT),
        ("core/regions.py", "from taupet_bids.training import engine", PRODUCT),
        ("templates.py", "from taupet_bids.core import images", "foundation"),
        ("training/examples.py", "from taupet_bids.interfaces import frames", "users-call-core"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    root = package_copy(tmp_path)
    clean = lint_imports(root, contract)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    with open(root / "taupet_bids" / module, "a") as handle:
        handle.write(f"\n{line}  # noqa\n")
    broken = lint_imports(root, contract)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "0 kept, 1 broken" in broken.stdout
