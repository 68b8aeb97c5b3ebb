"""``taupet-bids-train MODEL ...``: one subcommand per trained model or template.

Each subcommand is a module with ``main(argv) -> int`` (its own argparse parser), registered by
one line in :data:`COMMANDS`; the module is imported only when its subcommand runs, so
``taupet-bids-train --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from taupet_bids.errors import report_unexpected


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one line of help, and the module whose ``main(argv)`` runs it."""

    name: str
    help: str
    module: str


COMMANDS = (
    Command(
        "normaliser",
        "train the MR-less normalisation network and write a MONAI bundle",
        "taupet_bids.training.normaliser_cli",
    ),
    Command(
        "classifier",
        "train the AD vs CN classifier on template-space SUVR and write a MONAI bundle",
        "taupet_bids.training.classifier_cli",
    ),
    Command(
        "harmoniser",
        "train the PET-MR -> PET-CT harmoniser on simulated pairs and write a MONAI bundle",
        "taupet_bids.training.harmoniser_cli",
    ),
    Command(
        "synthesis",
        "train a synthesis network (T1w -> tau SUVR) and write a MONAI bundle",
        "taupet_bids.training.synthesis_cli",
    ),
    Command(
        "pet-template",
        "build a tau PET template from MR-based SUVR outputs (the ANTs baseline's reference)",
        "taupet_bids.normalisation.pet_template",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train",
        description="Train taupet-bids' models (each writes a MONAI bundle) or build templates. "
        "Run `taupet-bids-train MODEL --help` for a subcommand's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="MODEL")
    for command in COMMANDS:
        sub.add_parser(command.name, help=command.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {command.name: command for command in COMMANDS}
    if not argv or argv[0] not in commands:
        build_parser().parse_args(argv)  # prints the help, or the error for an unknown MODEL
    module = importlib.import_module(commands[argv[0]].module)
    try:
        return int(module.main(argv[1:]) or 0)
    except Exception as error:  # noqa: BLE001 - a bug: one line for the user, the trace in a file
        return report_unexpected("taupet-bids-train", error)


if __name__ == "__main__":
    sys.exit(main())
