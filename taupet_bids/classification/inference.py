"""Classify one template-space SUVR scan and explain it with an occlusion-sensitivity map.

The bundle's ``configs/inference.json`` names these functions: :func:`prepare_file` is its
``preprocessing``, :func:`infer` and :func:`occlusion_map` run its ``network``,
:func:`save_outputs` is its ``postprocessing``. The pipeline calls the same functions, so MONAI's
runner and the pipeline write the same files.

Beside it, an integrated-gradients map (:mod:`taupet_bids.classification.attribution`) shares
the AD evidence out over the voxels, which occlusion cannot do when the evidence is redundant.

Occlusion sensitivity (MONAI's :class:`~monai.visualize.OcclusionSensitivity`): every
:data:`MASK_VOXELS`-voxel cube (12 mm at 4 mm) of the brain's bounding box is in turn set to
SUVR 1.0, reference-level uptake, and the network rerun. Setting it to 0 instead (MONAI's usual
choice) would create a hole of no signal at all, an image unlike any scan, and the map would
measure the network's reaction to holes. With ``overlap`` 0 each voxel is occluded once, so the
map is constant over 12 mm cubes; the map holds P(AD) of the scan minus P(AD) occluded.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from monai.inferers import Inferer
from monai.visualize import OcclusionSensitivity

from taupet_bids import atlases, naming, templates
from taupet_bids.atlases.regions import region_groups
from taupet_bids.classification import preprocessing
from taupet_bids.classification.attribution import (
    BASELINE_SUVR,
    AttributionMap,
    attribution_map,
)
from taupet_bids.classification.bundle import Classifier
from taupet_bids.classification.networks import CLASSES, ad_probability
from taupet_bids.core.occlusion import region_sensitivity, top_regions

#: Side of the occluding cube in 4 mm voxels (12 mm).
MASK_VOXELS = 3
#: Millimetres per network input voxel.
VOXEL_MM = preprocessing.POOL * templates.WORKING_RESOLUTION
#: Uptake the occluder puts in (SUVR): reference level.
OCCLUDER_SUVR = 1.0
#: Overlap of successive occluder positions (0: each voxel occluded once).
OVERLAP = 0.0
#: Decimals of the reported P(AD).
PROBABILITY_DECIMALS = 6
#: Occluded copies of the scan per network call.
OCCLUSION_BATCH = 16
#: Atlases the map is summarised over: DK bilateral regions and Braak stages I-VI.
SUMMARY_ATLASES = ("DK", "Braak")
#: DK tissues the summary covers: cortex, subcortical nuclei (with hippocampus and amygdala) and
#: cerebellar cortex.
GREY_TISSUES = ("cortex", "subcortical", "cerebellar_cortex")


@dataclass(frozen=True)
class Prediction:
    """P(AD) of one scan and its label at ``threshold``."""

    probability: float
    threshold: float

    @property
    def reported(self) -> float:
        """P(AD) as written, to :data:`PROBABILITY_DECIMALS` decimals."""
        return round(self.probability, PROBABILITY_DECIMALS)

    @property
    def label(self) -> str:
        """AD at or above the threshold, judged on the reported P(AD): a reader applying the
        threshold to the written value gets the written label (0.4999996 is reported 0.5)."""
        return CLASSES[1] if self.reported >= self.threshold else CLASSES[0]


def prepare_file(path: str | Path) -> torch.Tensor:
    """The bundle's preprocessing: a template-space SUVR file as a (1, 1, 46, 55, 46) tensor."""
    return torch.from_numpy(preprocessing.read_suvr(path))[None, None]


def infer(network: torch.nn.Module, inferer: Inferer, image: torch.Tensor) -> float:
    """P(AD) of a prepared scan."""
    with torch.no_grad():
        return float(ad_probability(inferer(image, network.eval()))[0])


def predict(
    network: torch.nn.Module, inferer: Inferer, image: torch.Tensor, threshold: float
) -> Prediction:
    """P(AD) of a prepared scan and its label at ``threshold``."""
    return Prediction(infer(network, inferer, image), float(threshold))


def _class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over classes (MONAI's ``activate=True`` would choose by *input* channels)."""
    return torch.softmax(logits, dim=1)


@dataclass(frozen=True)
class OcclusionMap:
    """Drop in P(AD) per 4 mm voxel when occluded, and how the occluder was moved."""

    values: np.ndarray
    mask_voxels: int
    overlap: float

    @property
    def mask_mm(self) -> int:
        return self.mask_voxels * VOXEL_MM


@cache
def brain_box() -> tuple[int, ...]:
    """Inclusive bounding box (4 mm voxels) of the template brain: where occlusion is tried."""
    mask = np.asarray(nib.load(templates.brain_mask_path()).dataobj, dtype=np.float32)
    inside = np.argwhere(preprocessing.downsample(mask) > 0)
    return tuple(int(v) for pair in zip(inside.min(0), inside.max(0), strict=True) for v in pair)


def occlusion_map(
    network: torch.nn.Module,
    image: torch.Tensor,
    mask_voxels: int = MASK_VOXELS,
    overlap: float = OVERLAP,
    box: tuple[int, ...] | None = None,
) -> OcclusionMap:
    """P(AD) of ``image`` minus P(AD) with each cube set to SUVR 1.0, on the 4 mm grid.

    Only cubes inside ``box`` (default: the template brain's bounding box) are tried; the map is
    0 outside it.
    """
    box = brain_box() if box is None else box
    occluder = OcclusionSensitivity(
        network.eval(),
        mask_size=mask_voxels,
        n_batch=OCCLUSION_BATCH,
        verbose=False,
        mode=OCCLUDER_SUVR,
        overlap=overlap,
        activate=_class_probabilities,
    )
    # MONAI documents b_box as inclusive but crops its result with an exclusive end.
    ends = [value + 1 if index % 2 else value for index, value in enumerate(box)]
    with torch.no_grad(), warnings.catch_warnings():
        # MONAI 1.6.1 indexes with a list of slices; PyTorch warns on every call, once per scan
        # in a user's log. The indexing is correct today; the filter is this narrow on purpose.
        warnings.filterwarnings("ignore", "Using a non-tuple sequence", UserWarning)
        occluded, _ = occluder(image, b_box=ends)
        baseline = float(_class_probabilities(network(image))[0, CLASSES.index("AD")])
    cropped = occluded[0, CLASSES.index("AD")].numpy()
    full = np.zeros(image.shape[2:], dtype=np.float32)
    lows = box[::2]
    full[tuple(slice(lo, lo + n) for lo, n in zip(lows, cropped.shape, strict=True))] = (
        baseline - cropped
    )
    return OcclusionMap(full, mask_voxels, overlap)


def _summary_groups(atlas: str) -> dict[str, list[int]]:
    """Bilateral DK grey-matter regions, or Braak stages I-VI.

    White matter, ventricles, vessels and other small non-grey labels are left out: a
    20-voxel label can top the ranking by chance, and tau is read in grey matter.
    """
    groups = region_groups(atlas)
    if atlas == "DK":
        grey = {label.region for label in atlases.dk_labels() if label.tissue in GREY_TISSUES}
        return {name: ids for name, ids in groups.items() if name in grey}
    return {f"Braak{roman}": groups[f"Braak{roman}"] for roman in atlases.BRAAK_ROMAN.values()}


def regional_summary(sensitivity_2mm: np.ndarray) -> pd.DataFrame:
    """The 2 mm map summarised per DK grey-matter region and Braak stage (core.occlusion)."""
    tables = []
    for atlas in SUMMARY_ATLASES:
        labels = np.asarray(nib.load(templates.atlas_path(atlas)).dataobj)
        tables.append(region_sensitivity(sensitivity_2mm, labels, _summary_groups(atlas), atlas))
    return pd.concat(tables, ignore_index=True)


@dataclass(frozen=True)
class Outputs:
    """Where one scan's classification outputs go."""

    prediction: Path
    occlusion_map: Path
    regions: Path
    attribution_map: Path
    attribution_regions: Path


def output_paths(input_file: str | Path, output_dir: str | Path) -> Outputs:
    """Output names from the input's BIDS entities (the file name itself when it has none)."""
    name = Path(input_file).name
    stem = naming.scan_stem(name) or name.removesuffix(".gz").removesuffix(".nii")
    folder = Path(output_dir)
    return Outputs(
        prediction=folder / f"{stem}_desc-ADvsCN_classification.json",
        occlusion_map=folder / f"{stem}_{naming.SPACE}_desc-occlusion_map.nii.gz",
        regions=folder / f"{stem}_{naming.SPACE}_desc-occlusion_regions.tsv",
        attribution_map=folder / f"{stem}_{naming.SPACE}_desc-attribution_map.nii.gz",
        attribution_regions=folder / f"{stem}_{naming.SPACE}_desc-attribution_regions.tsv",
    )


def _save_map(values_4mm: np.ndarray, map_file: Path, regions_file: Path) -> pd.DataFrame:
    """A 4 mm map on the 2 mm template grid, and its regional summary (returned)."""
    on_template = preprocessing.to_template_grid(values_4mm)
    image = nib.Nifti1Image(on_template.astype(np.float32), preprocessing.template_affine())
    image.header.set_xyzt_units("mm")
    nib.save(image, map_file)
    table = regional_summary(on_template)
    table.to_csv(regions_file, sep="\t", index=False, float_format="%.6g", na_rep="n/a")
    return table


def save_outputs(
    prediction: Prediction,
    sensitivity: OcclusionMap,
    outputs: Outputs,
    metadata: dict | None = None,
    attribution: AttributionMap | None = None,
) -> Outputs:
    """Write P(AD) and label (JSON), the maps on the 2 mm template grid and their regional
    tables (the attribution map only when given: a bundle config older than 0.2.1 omits it)."""
    outputs.prediction.parent.mkdir(parents=True, exist_ok=True)
    table = _save_map(sensitivity.values, outputs.occlusion_map, outputs.regions)
    metadata = metadata or {}
    record = {
        "ADProbability": prediction.reported,
        "Label": prediction.label,
        "Threshold": prediction.threshold,
        "Classes": list(CLASSES),
        "ModelName": metadata.get("name"),
        "ModelVersion": metadata.get("version"),
        "ModelSHA256": metadata.get("taupet_bids", {}).get("model_sha256"),
        "OcclusionMaskMM": sensitivity.mask_mm,
        "OcclusionOverlap": sensitivity.overlap,
        "OccluderSUVR": OCCLUDER_SUVR,
        "TopDKRegions": top_regions(table, "DK"),
        "TopBraakStages": top_regions(table, "Braak"),
    }
    if attribution is not None:
        attributed = _save_map(
            attribution.values, outputs.attribution_map, outputs.attribution_regions
        )
        record.update({
            "AttributionMethod": "integrated gradients of the AD log-odds",
            "AttributionBaselineSUVR": BASELINE_SUVR,
            "AttributionSteps": attribution.steps,
            "AttributionLogOddsChange": round(attribution.log_odds_change, 4),
            "AttributionCompletenessError": round(attribution.completeness_error, 4),
            "AttributionTopDKRegions": top_regions(attributed, "DK"),
            "AttributionTopBraakStages": top_regions(attributed, "Braak"),
        })  # fmt: skip
    outputs.prediction.write_text(json.dumps(record, indent=2) + "\n")
    return outputs


def classify(
    image: torch.Tensor, classifier: Classifier
) -> tuple[Prediction, OcclusionMap, AttributionMap]:
    """What the pipeline runs: the bundle's prediction, occlusion and attribution maps."""
    prediction = predict(classifier.network, classifier.inferer, image, classifier.threshold)
    sensitivity = occlusion_map(
        classifier.network, image, classifier.mask_voxels, classifier.overlap
    )
    return prediction, sensitivity, attribution_map(classifier.network, image)
