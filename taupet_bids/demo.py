"""``make demo``: simulate a small tau PET cohort and run the app on it, then say where to look.

Usage: ``python -m taupet_bids.demo DEMO_DIR [--n-subjects N] [--classify] [--synthesize]
[--harmonize]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taupet_bids import demo_harmonisation, demo_synthesis, templates


def main(argv: list[str] | None = None) -> int:
    """Simulate, process at participant then group level, print the output paths."""
    parser = argparse.ArgumentParser(prog="python -m taupet_bids.demo", description=__doc__)
    parser.add_argument("demo_dir", type=Path, help="folder for the demo data and outputs")
    parser.add_argument("--n-subjects", type=int, default=4, help="simulated participants")
    parser.add_argument(
        "--no-t1w-fraction",
        type=float,
        default=0.25,
        help="share of participants simulated without a T1w (processed MR-less)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="simulation seed")
    parser.add_argument(
        "--classify",
        action="store_true",
        help="also run the shipped AD-vs-CN classifier with its occlusion maps "
        "(about half a minute more per scan on one CPU thread)",
    )
    parser.add_argument(
        "--synthesize",
        action="store_true",
        help="also simulate FDG and TSPO scans, train one small synthesis bundle per task and "
        "a tiny latent diffusion model on the demo's own derivatives and run every --synthesize "
        "path (about 20 minutes more; the bundles show the path, not an accuracy)",
    )
    parser.add_argument(
        "--harmonize",
        action="store_true",
        help="also image every visit on a PET/MR with MR-based attenuation correction, train a "
        "small harmoniser on the demo's own PET/MR and PET-CT pairs and run --harmonize auto "
        "(a few minutes more; the bundle shows the path, not an accuracy)",
    )
    args = parser.parse_args(argv)

    templates.ensure_templateflow()
    from taupet_bids.cli.run import main as run_app
    from taupet_bids.simulate.cli import main as simulate
    from taupet_bids.training.cli import main as train

    demo = args.demo_dir.absolute()
    bids_dir, out_dir = demo / "bids", demo / "derivatives" / "taupet-bids"
    if not (bids_dir / "dataset_description.json").exists():
        print(f"[demo] simulating {args.n_subjects} participants into {bids_dir}", flush=True)
        code = simulate(
            [str(bids_dir), "--n-subjects", str(args.n_subjects), "--seed", str(args.seed),
             "--no-t1w-fraction", str(args.no_t1w_fraction),
             *(demo_synthesis.SIMULATE_OPTIONS if args.synthesize else []),
             *(demo_harmonisation.SIMULATE_OPTIONS if args.harmonize else [])]
        )  # fmt: skip
        if code:
            return code
    options = ["--classify"] if args.classify else []
    print(
        f"[demo] running: taupet-bids {bids_dir} {out_dir} participant {' '.join(options)}",
        flush=True,
    )
    code = run_app([str(bids_dir), str(out_dir), "participant", "-w", str(demo / "work"), *options])
    if args.synthesize:
        synthesis_code = demo_synthesis.run(
            bids_dir, out_dir, demo / "work", demo / "synthesis-models", run_app, train
        )
        code = code or synthesis_code
    if args.harmonize:
        harmonisation_code = demo_harmonisation.run(
            bids_dir, out_dir, demo / "work", demo / "harmonisation-models", run_app, train
        )
        code = code or harmonisation_code
    print(f"[demo] running: taupet-bids {bids_dir} {out_dir} group", flush=True)
    group_code = run_app([str(bids_dir), str(out_dir), "group"])
    tables = sorted(out_dir.rglob("*seg-MetaTemporal*_suvr.tsv"))
    print("\n[demo] done.")
    print(f"  simulated BIDS dataset : {bids_dir}")
    print(f"  ground truth           : {bids_dir / 'derivatives' / 'truth'}")
    print(f"  derivatives            : {out_dir}")
    print(f"  regional SUVR tables   : {len(tables)} meta-temporal, e.g. {tables[:1]}")
    print(f"  methods text           : {out_dir / 'logs' / 'CITATION.md'}")
    print(f"  subject reports        : {sorted(out_dir.glob('sub-*.html'))[:1]} ...")
    mr_less = sorted({p.parent.parent.name for p in out_dir.glob("sub-*/pet/*_from-pet_to-MNI*")})
    print(f"  normalised without MRI : {', '.join(mr_less) or 'none'} (docs/mrless.md)")
    print(f"  group tables           : {out_dir / 'group'}")
    if args.classify:
        calls = sorted(out_dir.glob("sub-*/**/*_desc-ADvsCN_classification.json"))
        print(f"  AD-vs-CN predictions   : {len(calls)}, e.g. {calls[:1]} (docs/classification.md)")
    if args.synthesize:
        synthetic = sorted(out_dir.glob("sub-*/**/*_desc-synthetic*_pet.nii.gz"))
        print(f"  synthetic images       : {len(synthetic)}, e.g. {synthetic[:1]}")
    if args.harmonize:
        harmonised = sorted(out_dir.glob("sub-*/**/*_desc-harmonized_pet.nii.gz"))
        print(f"  harmonised SUVR images : {len(harmonised)}, e.g. {harmonised[:1]}")
    print(f"\n[demo] group report: {out_dir / 'group' / 'report.html'}")
    return code or group_code


if __name__ == "__main__":
    sys.exit(main())
