"""``taupet-bids-train``: retrain the MR-less normaliser, or build the tau PET template.

Subcommands:

- ``normaliser``: train both stages from simulated heads (default) or from a BIDS dataset's
  taupet-bids MR-based derivatives (``--derivatives``), then write a MONAI bundle that
  ``taupet-bids --mr-less-model`` can load;
- ``pet-template``: average MR-based template-space SUVR images into a tau PET template (the
  reference of the ANTs baseline, ``--mr-less-method ants``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taupet_bids.training.loop import TrainConfig


def _normaliser_parser(sub) -> None:
    parser = sub.add_parser(
        "normaliser",
        help="train the MR-less normalisation network and write a MONAI bundle",
        description="Train the affine then the deformable stage. Deterministic for --seed; "
        "re-running with the same --out resumes from its checkpoint.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="working folder (checkpoints, logs)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="write the trained bundle here (default: OUT/bundle)"
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument(
        "--derivatives",
        type=Path,
        nargs="+",
        default=[],
        help="taupet-bids MR-based derivatives folder(s) to train on instead of simulated heads",
    )
    parser.add_argument(
        "--heads", type=int, default=TrainConfig.n_heads, help="simulated training heads"
    )
    parser.add_argument("--validation-heads", type=int, default=TrainConfig.n_validation)
    parser.add_argument("--affine-steps", type=int, default=TrainConfig.affine_steps)
    parser.add_argument("--deform-steps", type=int, default=TrainConfig.deform_steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="PyTorch threads")
    parser.add_argument("--jobs", type=int, default=TrainConfig.jobs, help="simulation processes")


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n")[0].split(": ", 1)[1]
    parser = argparse.ArgumentParser(prog="taupet-bids-train", description=summary)
    sub = parser.add_subparsers(dest="command", required=True)
    _normaliser_parser(sub)
    template = sub.add_parser(
        "pet-template", help="build a tau PET template from MR-based SUVR outputs", add_help=False
    )
    template.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pet-template"]:
        from taupet_bids.normalisation import pet_template

        return int(pet_template.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    from taupet_bids.normalisation.model_card import export_trained_bundle
    from taupet_bids.training.loop import train

    config = TrainConfig(
        out_dir=args.out,
        seed=args.seed,
        n_heads=args.heads,
        n_validation=args.validation_heads,
        affine_steps=args.affine_steps,
        deform_steps=args.deform_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        threads=args.threads,
        jobs=args.jobs,
        derivatives=list(args.derivatives),
    )
    metrics = train(config, log=lambda line: print(line, flush=True))
    bundle = export_trained_bundle(config, metrics, args.bundle or args.out / "bundle")
    print(f"bundle written to {bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
