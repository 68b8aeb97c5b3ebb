"""Why a tiny latent diffusion model does not follow MMSE: its autoencoder and its denoiser on
constructed data, measured.

The data are the tests' constructed cohort (``tests/synthesis_cohort.py``) with one anatomy for
everyone (``atrophy`` 0): SUVR 1 in the template brain plus a load ``a`` in [0, 1.5] in the Braak
I-IV regions, and MMSE ``30 - 12 a`` in participants.tsv, so only the clinical value tells the
load. For each autoencoder posterior (``mean``: the decoder trained from the posterior's mean;
``sample``: from a sample of it, MONAI's forward) and each seed, a small model is trained with
:func:`taupet_bids.training.synthesis_diffusion.train` and the script reports:

- the posterior's SD (median over latent voxels) beside the SD of the latent mean between scans
  (median over latent voxels): how much sampling noise the decoder saw against the code;
- the autoencoder's ceiling: the Braak I-IV SUVR of each training scan through the autoencoder
  alone, regressed on the true value (slope 1: every difference kept; 0: the cohort's mean);
- the model's response to MMSE: Braak I-IV SUVR of the mean of 4 samples of one T1w at MMSE 30
  and 12 (same seed), per MMSE point (the truth: -1/12 = -0.083).

Usage: python benchmarks/diffusion_constructed.py [--out /tmp/diffusion-constructed]
[--seeds 3 4] [--autoencoder-steps 200] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from participant_accuracy import environment, update_report  # noqa: E402

from taupet_bids import templates  # noqa: E402
from taupet_bids.synthesis import diffusion_inference, inference, preprocessing  # noqa: E402
from taupet_bids.training.synthesis_diffusion import POSTERIORS, DiffusionConfig, train  # noqa: E402
from tests.synthesis_cohort import _template, write_cohort  # noqa: E402

START = "<!-- diffusion-constructed:start -->"
END = "<!-- diffusion-constructed:end -->"
RESULTS = Path(__file__).resolve().parent / "results" / "diffusion_constructed.json"
PARTICIPANTS = 8
ARCHITECTURE = {"autoencoder_channels": [8, 8, 8], "latent_channels": 2,
                "unet_channels": [8, 8], "norm_groups": 4, "head_channels": 4}  # fmt: skip
MMSE = (30, 12)


def cohort(root: Path) -> Path:
    """The constructed derivatives (one anatomy) with MMSE = 30 - 12 x load."""
    derivatives = write_cohort(root, n=PARTICIPANTS, atrophy=0.0)
    rows = ["participant_id\tage\tmmse\tamyloid_status"]
    rows += [f"sub-p{i}\t70\t{30 - 12 * load:.0f}\tn/a"
             for i, load in enumerate(np.linspace(0.0, 1.5, PARTICIPANTS))]  # fmt: skip
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return derivatives


def trained(config: DiffusionConfig):
    train(config, log=lambda line: None)
    network = config.network()
    for child, state in torch.load(config.out_dir / "model.pt", weights_only=True).items():
        getattr(network, child).load_state_dict(state)
    return network.eval()


@torch.no_grad()
def measure(network, derivatives: Path) -> dict:
    _, braak, _, _ = _template()
    suvr = sorted(derivatives.rglob("*desc-suvr_pet.nii.gz"))
    truth, rebuilt, means, sds = [], [], [], []
    for path in suvr:
        volume = torch.from_numpy(preprocessing.read_suvr(path))[None, None]
        mean, sd = network.autoencoder.encode(volume)
        means.append(mean)
        sds.append(sd)
        back = network.autoencoder.decode(mean)[0, 0].numpy()
        truth.append(float(preprocessing.to_template_grid(volume[0, 0].numpy())[braak].mean()))
        rebuilt.append(float(preprocessing.to_template_grid(back)[braak].mean()))
    image = inference.prepare_file(sorted(derivatives.rglob("*desc-preproc_T1w.nii.gz"))[0])
    response = {}
    for mmse in MMSE:
        made = diffusion_inference.sample(network, image, [f"mmse={mmse}"], 4, seed=1, steps=10)
        response[mmse] = float(made.mean[braak].mean())
    return {
        "posterior_sd": float(torch.cat(sds).median()),
        "code_sd_between_scans": float(torch.cat(means).std(0).median()),
        "ceiling_slope": float(np.polyfit(truth, rebuilt, 1)[0]),
        "braak_at_mmse": response,
        "response_per_mmse_point": (response[MMSE[1]] - response[MMSE[0]]) / (MMSE[1] - MMSE[0]),
    }


def render(rows: list[dict], args: argparse.Namespace, env: dict) -> str:
    lines = [
        START,
        "## Latent diffusion on constructed data (why 300 steps do not teach a tiny model the "
        "direction)", "",
        f"Produced by `benchmarks/diffusion_constructed.py` (--autoencoder-steps "
        f"{args.autoencoder_steps} --steps {args.steps} --seeds "
        f"{' '.join(map(str, args.seeds))}) on {env['date']}, commit `{env['git_commit']}`. "
        f"{PARTICIPANTS} constructed scans of one anatomy, Braak I-IV SUVR 1-2.5 and MMSE "
        "30-12 (only the MMSE tells the load); autoencoder channels 8-8-8, 2 latent channels, "
        "U-Net 8-8; learning rate 1e-3, batch 2, one thread, beside other jobs. Truth of the "
        "response: -0.083 SUVR per MMSE point.", "",
        "| posterior in training | seed | posterior SD | code SD between scans | ceiling slope "
        "| Braak I-IV at MMSE 30 / 12 | response per MMSE point | minutes |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in rows:
        at = row["braak_at_mmse"]
        lines.append(
            f"| {row['posterior']} | {row['seed']} | {row['posterior_sd']:.3f} | "
            f"{row['code_sd_between_scans']:.4f} | {row['ceiling_slope']:.3f} | "
            f"{at[MMSE[0]]:.3f} / {at[MMSE[1]]:.3f} | {row['response_per_mmse_point']:+.2e} | "
            f"{row['minutes']:.1f} |"
        )
    return "\n".join([*lines, END])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/diffusion-constructed"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--posteriors", nargs="+", choices=POSTERIORS, default=list(POSTERIORS))
    parser.add_argument("--autoencoder-steps", type=int, default=200)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    templates.ensure_templateflow()
    torch.set_num_threads(1)
    derivatives = cohort(args.out / "cohort")
    rows = []
    for posterior in args.posteriors:
        for seed in args.seeds:
            started = time.perf_counter()
            config = DiffusionConfig(
                args.out / f"{posterior}-{seed}", [derivatives], seed=seed, steps=args.steps,
                autoencoder_steps=args.autoencoder_steps, batch_size=2, checkpoint_every=10**6,
                ddim_steps=10, autoencoder_posterior=posterior, **ARCHITECTURE,
            )  # fmt: skip
            row = {"posterior": posterior, "seed": seed, **measure(trained(config), derivatives)}
            row["minutes"] = (time.perf_counter() - started) / 60
            rows.append(row)
            print(json.dumps(row), flush=True)
    env = environment()
    update_report(args.report.resolve(), render(rows, args, env), START, END)
    RESULTS.write_text(json.dumps({"arguments": {k: str(v) for k, v in vars(args).items()},
                                   "rows": rows, "environment": env}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
