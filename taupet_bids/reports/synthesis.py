"""``--synthesize`` in the subject report: each synthetic image in its own, clearly labelled
section, beside the measured SUVR of the same session when there is one.

Drawn when the report is written, from the committed images alone (like every other section,
it can be rebuilt without the work folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from taupet_bids import naming  # noqa: E402
from taupet_bids.core.figures import svg_text  # noqa: E402
from taupet_bids.reports.html import definitions, esc, inline_svg, table  # noqa: E402
from taupet_bids.tracers import identify_tracer  # noqa: E402

#: Axial slices shown (template voxel index, 2 mm grid), through the temporal lobes upward.
SLICES = (25, 32, 40, 50)
VMAX = 3.0
#: The ``desc-`` ending of a diffusion model's SD map (taupet_bids.synthesis.diffusion_inference).
SD_SUFFIX = "SD"


def synthetic_images(output_dir: Path, subject: str) -> list[Path]:
    """The subject's synthetic images (``*_desc-synthetic*_pet.nii.gz``); a diffusion model's
    SD map (``desc-...SD``) is not an SUVR image and is named in its mean's section instead."""
    found = (output_dir / subject).glob("**/pet/*_desc-synthetic*_pet.nii.gz")
    return sorted(p for p in found if not naming.entities(p.name)["desc"].endswith(SD_SUFFIX))


def _images(trc: str | None) -> str:
    """What a ``trc-`` label images (``tau``, ``TSPO``, ...); a tracer not known counts as tau,
    as the participant level processes it."""
    tracer = identify_tracer(None, trc)
    return tracer.target if tracer is not None else "tau"


def measured_for(image: Path) -> Path | None:
    """The measured template-space SUVR of the same session and of a tracer of the same target
    (a synthetic TSPO image is never drawn above a measured tau scan), if any (the first by
    name)."""
    session = naming.entities(image.name)
    keys = [f"{k}-{session[k]}" for k in ("sub", "ses") if k in session]
    for candidate in sorted(image.parent.glob("*_desc-suvr_pet.nii.gz")):
        ents = naming.entities(candidate.name)
        same_session = [f"{k}-{ents[k]}" for k in ("sub", "ses") if k in ents] == keys
        if same_session and _images(ents.get("trc")) == _images(session.get("trc")):
            return candidate
    return None


def comparison_figure(synthetic: Path, measured: Path | None) -> str:
    """Axial slices of the synthetic SUVR, above the measured one when there is one (SVG)."""
    rows = [("synthetic (not measured)", synthetic)]
    if measured is not None:
        rows.append(("measured", measured))
    fig, axes = plt.subplots(len(rows), len(SLICES), figsize=(2 * len(SLICES), 2.2 * len(rows)))
    axes = np.atleast_2d(axes)
    for row, (label, path) in enumerate(rows):
        data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        for column, z in enumerate(SLICES):
            ax = axes[row, column]
            shown = ax.imshow(np.rot90(data[:, :, z]), cmap="inferno", vmin=0, vmax=VMAX)
            ax.set_axis_off()
            if column == 0:
                ax.set_title(label, fontsize=9, loc="left")
    fig.colorbar(shown, ax=axes, shrink=0.6, label="SUVR")
    return svg_text(fig)


def _metatemporal(table_path: Path) -> float | None:
    if not table_path.exists():
        return None
    frame = pd.read_csv(table_path, sep="\t", na_values="n/a").set_index("region")
    return float(frame.loc["metatemporal", "suvr_mean"])


def synthesis_section(image: Path) -> str:
    """One synthetic image's section: what made it, its tables, and the comparison figure."""
    meta = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
    measured = measured_for(image)
    base = image.name.removesuffix("_pet.nii.gz")
    stem = naming.scan_stem(image.name)
    desc = naming.entities(image.name)["desc"]
    tables = {}
    for path in sorted(image.parent.glob(f"{stem}_space-*_seg-*_desc-{desc}_suvr.tsv")):
        tables[naming.entities(path.name)["seg"]] = path
    summary = {
        "image": image.name,
        "what it is": "SYNTHETIC: predicted by a network from the "
        f"{meta.get('SynthesisSource')}; not a measurement",
        "task": meta.get("SynthesisTask"),
        "model": f"{meta.get('ModelName')} {meta.get('ModelVersion')}",
        "weights sha256": meta.get("ModelSHA256"),
        "inputs": ", ".join(meta.get("Sources", [])),
    }
    synthetic_value = _metatemporal(tables["MetaTemporal"]) if "MetaTemporal" in tables else None
    if synthetic_value is not None:
        summary["meta-temporal SUVR (synthetic)"] = f"{synthetic_value:.3f}"
    if measured is not None:
        summary["measured scan of this session"] = measured.name
    if "Conditioning" in meta:  # a diffusion model's samples
        summary["clinical conditioning"] = (
            f"{meta['Conditioning']} {json.dumps(meta.get('ClinicalConditioning', {}))}"
        )
        summary["samples (seed, DDIM steps, guidance)"] = (
            f"{meta.get('NumberOfSamples')} ({meta.get('SamplingSeed')}, "
            f"{meta.get('SamplingSteps')}, {meta.get('GuidanceScale')}); their SD: "
            + image.name.replace(f"_desc-{desc}_", f"_desc-{desc}{SD_SUFFIX}_")
        )
    parts = [
        f'<section id="{esc(base)}"><h2>Synthetic: {esc(base)}</h2>',
        '<p class="warn">This image was not measured. It shows the tau a network predicts from '
        "another modality (docs/synthesis.md); its tables are marked synthetic in the group "
        "tables.</p>",
        definitions(summary),
        "<h3>Synthetic" + (" and measured SUVR" if measured else " SUVR") + "</h3>",
        inline_svg(comparison_figure(image, measured), "synthetic SUVR slices"),
    ]
    for atlas in ("MetaTemporal", "Braak"):
        if atlas in tables:
            frame = pd.read_csv(tables[atlas], sep="\t", na_values="n/a")
            parts += [f"<h4>{atlas} (synthetic)</h4>", table(frame)]
    parts.append("</section>")
    return "".join(parts)
