"""``taupet-bids-simulate``: write a simulated ADNI-style tau PET BIDS dataset with ground truth."""

from __future__ import annotations

import argparse
import shlex
import sys

from taupet_bids.errors import report_unexpected
from taupet_bids.simulate.cohort import (
    ATROPHY_MODELS,
    MODALITIES,
    PET_MR_CHOICES,
    CohortConfig,
    simulate_cohort,
)
from taupet_bids.simulate.diagnosis import DIAGNOSIS_MODELS
from taupet_bids.simulate.other_anatomy import ANATOMIES


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="taupet-bids-simulate",
        description=(
            "Write a synthetic ADNI-style BIDS dataset: per subject a T1w and a flortaucipir-like "
            "tau PET (80-100 min p.i.) with Braak-staged uptake, plus the ground truth "
            "(template-space SUVR maps, regional tables, transforms) in OUT/derivatives/truth."
        ),
        epilog="Same options and seed give byte-identical images. See docs/simulator.md.",
    )
    parser.add_argument("out", metavar="OUT", help="output BIDS dataset folder (created)")
    parser.add_argument("--n-subjects", type=int, default=10, help="number of subjects (10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="visits per subject; >1 gives longitudinal ses-M000, ses-M024, ... (1: no ses-)",
    )
    parser.add_argument(
        "--interval-months", type=int, default=24, help="months between visits (24)"
    )
    parser.add_argument(
        "--no-t1w-fraction",
        type=float,
        default=0.0,
        help="fraction of subjects written without a T1w (0.0)",
    )
    frames = parser.add_mutually_exclusive_group()
    frames.add_argument(
        "--n-frames",
        type=int,
        default=4,
        help="PET frames of 5 min from 80 min p.i. (4); 1 means one averaged 80-100 min frame",
    )
    frames.add_argument(
        "--single-frame",
        action="store_true",
        help="one averaged 80-100 min frame (ADNI 'averaged' images); same as --n-frames 1",
    )
    parser.add_argument(
        "--tracer", default="18FAV1451", help="trc- label of PET files (18FAV1451, Clinica style)"
    )
    parser.add_argument("--rec", default=None, help="rec- label of PET files, e.g. acstat (none)")
    parser.add_argument(
        "--anatomy",
        choices=ANATOMIES,
        default="other",
        help="'other' (default): a brain that is not the analysis template, in a realistic head "
        "(face, skull, meninges, neck) with off-target binding and atrophy; 'template': the "
        "analysis template itself, warped (flatters every registration; see docs/simulator.md)",
    )
    parser.add_argument(
        "--pet-mr",
        choices=PET_MR_CHOICES,
        default=None,
        help="image every PET visit twice, on a PET-CT (rec-ctac, CT-based attenuation "
        "correction) and on a PET/MR (rec-mrac) whose MR-based mu-map gets bone wrong: 'dixon' "
        "(no bone), 'atlas' (bone template 2-4 mm off), 'ute' (bone mu x ~0.7) or 'mixed' (one "
        "drawn per subject); needs --anatomy other, not with --rec (default: PET only)",
    )
    parser.add_argument(
        "--write-ct",
        action="store_true",
        help="with --pet-mr, also write the PET-CT's CT (ct/, in .bidsignore): a training input",
    )
    parser.add_argument(
        "--modalities",
        nargs="+",
        choices=MODALITIES,
        default=["tau"],
        help="PET per visit: 'tau' (flortaucipir-like), 'fdg' (trc-18FFDG, 30-60 min, pons "
        "reference; hypometabolism coupled to tau and amyloid), 'tspo' ([11C]PBR28-like, "
        "trc-11CPBR28, 60-90 min; genotype, AD increase, test-retest variation) (default: tau)",
    )
    parser.add_argument(
        "--atrophy",
        choices=ATROPHY_MODELS,
        default="stage",
        help="'stage' (default): ventricles and hippocampi change with the Braak stage; 'braak': "
        "grey-matter loss region by region following the subject's own tau, with individual "
        "variation, so the T1w predicts tau only partly (needs --anatomy other)",
    )
    parser.add_argument(
        "--diagnosis",
        choices=DIAGNOSIS_MODELS,
        default="stage",
        help="'stage' (default): the clinical label follows the Braak stage (0-II CN, III-IV MCI, "
        "V-VI AD); 'clinical': it follows the MMSE, and some participants have an impairment "
        "unrelated to tau, so labels and tau overlap as in a memory clinic (docs/simulator.md)",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: all CPU cores)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``taupet-bids-simulate``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = CohortConfig(
            n_subjects=args.n_subjects,
            seed=args.seed,
            sessions=args.sessions,
            interval_months=args.interval_months,
            no_t1w_fraction=args.no_t1w_fraction,
            n_frames=1 if args.single_frame else args.n_frames,
            tracer_label=args.tracer,
            rec=args.rec,
            jobs=args.jobs,
            anatomy=args.anatomy,
            pet_mr=args.pet_mr,
            write_ct=args.write_ct,
            modalities=tuple(dict.fromkeys(args.modalities)),
            atrophy=args.atrophy,
            diagnosis=args.diagnosis,
        )
    except ValueError as error:
        parser.error(str(error))
    command = shlex.join(["taupet-bids-simulate", *(sys.argv[1:] if argv is None else argv)])
    try:
        simulate_cohort(args.out, config, command=command)
    except Exception as error:  # noqa: BLE001 - a bug: one line for the user, the trace in a file
        return report_unexpected("taupet-bids-simulate", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
