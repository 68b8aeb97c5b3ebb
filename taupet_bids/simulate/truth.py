"""Ground truth: what a perfect pipeline should measure, written beside the dataset.

Two regional truths per PET scan, both in the space of the anatomy the phantom was made from
(2 mm grid; MNI152NLin2009aSym for the default ``other`` anatomy, MNI152NLin6Asym for the
``template`` one), over that anatomy's own regions, i.e. the subject's own regions pulled back:

- **sharp**: regional means of the noise-free, unblurred SUVR map (the map the subject's PET was
  made from) over the template atlases;
- **blurred**: the noise-free, motion-free PET in the subject's head, convolved with the
  scanner PSF, pulled back to the template with the exact inverse of the simulated warp,
  averaged over the same regions and divided by its own mean in the InfCerebGrey mask.

A PET-MR scan of a PET-CT/PET-MR pair (``--pet-mr``) has a third: **acbiased**, the blurred map
times the attenuation-correction bias its MR mu-map left (before noise and calibration), i.e.
what a perfect pipeline measures without harmonisation; its ``blurred`` truth is the target of
harmonisation. Its parameters record the AC method and the bias's mean in the reference region
(``reference_bias``), so ``acbiased / blurred * reference_bias`` is the bias itself.

Tables have columns ``atlas, region, suvr, n_voxels``; rows are every bilateral DK region
(``atlas=DK``), ``BraakI``..``BraakVI`` (``Braak``), ``metatemporal`` (``MetaTemporal``) and
every reference region (``reference``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from taupet_bids import atlases, naming
from taupet_bids.core.grids import Grid, sample
from taupet_bids.simulate import writer
from taupet_bids.simulate.anatomy import Anatomy
from taupet_bids.simulate.modalities.base import Scan, Visit
from taupet_bids.simulate.template import TemplateData
from taupet_bids.simulate.uptake import label_suvr

TABLE_COLUMNS = ("atlas", "region", "suvr", "n_voxels")
#: Folder of the truth derivative, relative to the simulated dataset.
TRUTH_DIR = Path("derivatives") / "truth"
KINDS = ("sharp", "blurred", "acbiased")


def blurred_truth_map(
    subject_points: np.ndarray,
    blurred: np.ndarray,
    working: Grid,
    template: TemplateData,
    reference_region: str = atlases.DEFAULT_REFERENCE,
) -> np.ndarray:
    """The PSF-blurred, motion-free subject PET pulled back to the template, as SUVR.

    ``subject_points`` is ``T^-1`` of every template 2 mm voxel (``Anatomy.from_template``).
    """
    values = sample(blurred, working.affine, subject_points)
    reference = template.reference_masks[reference_region]
    return (values / values[reference].mean()).astype(np.float32)


def _means(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of ``image`` per integer label (bincount: one pass over the volume)."""
    flat = labels.ravel()
    sums = np.bincount(flat, weights=image.ravel().astype(np.float64))
    counts = np.bincount(flat)
    return sums, counts


def regional_table(suvr: np.ndarray, template: TemplateData) -> list[dict]:
    """Regional mean SUVR of a template-space map over every truth region."""
    rows = []
    sums, counts = _means(suvr, template.atlas_images["DK"])
    for region in dict.fromkeys(label.region for label in atlases.dk_labels()):
        indices = [i for i in atlases.dk_indices([region]) if i < counts.size]
        n = int(counts[indices].sum())
        if n:
            rows.append(("DK", region, float(sums[indices].sum() / n), n))
    sums, counts = _means(suvr, template.atlas_images["Braak"])
    for stage, roman in atlases.BRAAK_ROMAN.items():
        if stage < counts.size and counts[stage]:
            rows.append(
                ("Braak", f"Braak{roman}", float(sums[stage] / counts[stage]), int(counts[stage]))
            )
    mask = template.atlas_images["MetaTemporal"] == 1
    rows.append(("MetaTemporal", "metatemporal", float(suvr[mask].mean()), int(mask.sum())))
    for label, mask in template.reference_masks.items():
        rows.append(("reference", label, float(suvr[mask].mean()), int(mask.sum())))
    return [dict(zip(TABLE_COLUMNS, row, strict=True)) for row in rows]


def write_table(path: Path, rows: list[dict]) -> None:
    """Write a truth table (TSV, fixed precision so output is byte-stable)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        for row in rows:
            writer.writerow([row["atlas"], row["region"], f"{row['suvr']:.6f}", row["n_voxels"]])


def read_truth_table(path: str | Path) -> pd.DataFrame:
    """Read a truth table; columns atlas, region, suvr (float), n_voxels (int)."""
    table = pd.read_csv(path, sep="\t", dtype={"atlas": str, "region": str})
    missing = set(TABLE_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path} is not a truth table: missing columns {sorted(missing)}")
    return table


def truth_value(table: pd.DataFrame, atlas: str, region: str) -> float:
    """One value of a truth table, e.g. ``truth_value(t, "MetaTemporal", "metatemporal")``."""
    hit = table[(table["atlas"] == atlas) & (table["region"] == region)]
    if len(hit) != 1:
        raise KeyError(f"no single truth row for atlas={atlas!r}, region={region!r}")
    return float(hit["suvr"].iloc[0])


def find_truth(
    dataset: str | Path,
    subject: str,
    session: str | None = None,
    kind: str = "sharp",
    tracer: str | None = None,
    suffix: str = ".tsv",
    rec: str | None = None,
) -> Path:
    """Path of one truth file of a simulated dataset for (subject, session).

    ``kind`` is ``sharp``, ``blurred`` or ``acbiased``; ``suffix`` ``.tsv`` (table), ``.nii.gz``
    (map) or ``.json`` (parameters, sharp only). ``tracer`` picks a ``trc-`` label when several
    exist, ``rec`` a ``rec-`` label (``ctac`` or ``mrac`` in a dataset of pairs).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    subject = subject.removeprefix("sub-")
    folder = Path(dataset) / TRUTH_DIR / f"sub-{subject}"
    if session is not None:
        folder = folder / f"ses-{session.removeprefix('ses-')}"
    pattern = f"*space-*_desc-{kind}_suvr{suffix}"
    found = sorted(
        p
        for p in (folder / "pet").glob(pattern)
        if (tracer is None or f"_trc-{tracer}_" in p.name)
        and (rec is None or f"_rec-{rec}_" in p.name)
    )
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one truth file {pattern} in {folder / 'pet'}, found {len(found)}"
        )
    return found[0]


def load_truth(
    dataset: str | Path,
    subject: str,
    session: str | None = None,
    kind: str = "sharp",
    tracer: str | None = None,
    rec: str | None = None,
) -> pd.DataFrame:
    """The regional truth table of one scan (see :func:`find_truth`)."""
    return read_truth_table(find_truth(dataset, subject, session, kind, tracer, rec=rec))


def _matrix(matrix: np.ndarray) -> list[list[float]]:
    return np.round(matrix, 8).tolist()


def write_truth_description(root: Path, source_description: dict) -> None:
    """dataset_description.json of the truth derivative."""
    writer.write_json(
        root / TRUTH_DIR / "dataset_description.json",
        {
            "Name": "Ground truth of the simulated dataset",
            "BIDSVersion": writer.BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": source_description["GeneratedBy"],
            "SourceDatasets": [{"URL": "file://../.."}],
        },
    )


def write_scan_truth(
    root: Path,
    visit: Visit,
    anatomy: Anatomy,
    pet: Scan,
    t1w: Scan | None,
    inverse: np.ndarray | None = None,
    write_anat: bool = True,
) -> dict[str, Path]:
    """Write maps, tables and transforms of one PET scan; return the paths by key.

    ``inverse`` (``T^-1`` of the template 2 mm grid) may be passed when several scans of a
    visit share it; ``write_anat=False`` leaves the visit's anatomical transforms, already
    written with its first scan.
    """
    template = visit.template
    folder = writer.subject_folder(root / TRUTH_DIR, visit.subject, visit.session)
    base = {"sub": visit.subject, "ses": visit.session}
    space = {**base, **pet.entities, "space": template.space, "res": naming.RESOLUTION}
    grid = template.grid_2mm
    paths: dict[str, Path] = {}
    if inverse is None:
        inverse = anatomy.from_template(grid.world_coordinates())
    reference_region = pet.truth.get("reference_region", atlases.DEFAULT_REFERENCE)
    maps = {
        "sharp": pet.truth["suvr_map"],
        "blurred": blurred_truth_map(
            inverse, pet.truth["blurred"], pet.truth["working_grid"], template, reference_region
        ),
    }
    if "ac_bias" in pet.truth:
        maps["acbiased"] = blurred_truth_map(
            inverse,
            pet.truth["blurred"] * pet.truth["ac_bias"],
            pet.truth["working_grid"],
            template,
        )
    for kind, data in maps.items():
        paths[f"{kind}_map"] = (
            folder / "pet" / writer.bids_name({**space, "desc": kind}, "suvr", ".nii.gz")
        )
        writer.write_nifti(paths[f"{kind}_map"], _template_image(data, grid.affine))
        paths[f"{kind}_table"] = paths[f"{kind}_map"].with_name(
            paths[f"{kind}_map"].name.replace(".nii.gz", ".tsv")
        )
        write_table(paths[f"{kind}_table"], regional_table(data, template))

    paths["parameters"] = paths["sharp_map"].with_name(
        paths["sharp_map"].name.replace(".nii.gz", ".json")
    )
    labels = pet.truth.get("label_values") or label_suvr(visit.profile, visit.tau)
    parameters = {
        "Description": pet.truth.get(
            "description",
            "Noise-free, unblurred SUVR map the PET was simulated from "
            "(reference InfCerebGrey = 1).",
        ),
        "SpatialReference": template.space,
        "braak_stage": visit.tau.stage,
        "amplitude": round(visit.tau.amplitude, 6),
        "months_since_baseline": visit.months,
        "label_suvr": {str(k): round(v, 6) for k, v in labels.items()},
        "psf_fwhm_mm": round(pet.truth["fwhm_mm"], 4),
        "scanner": pet.truth["scanner"],
        "injected_mbq": round(pet.truth["injected_mbq"], 4),
        "weight_kg": round(pet.truth["weight_kg"], 3),
        "reference_bqml": round(pet.truth["reference_bqml"], 4),
        "motion_scale": round(visit.motion_scale, 4),
    }
    if "reference_region" in pet.truth:
        parameters["reference_region"] = reference_region
        parameters.update(pet.truth.get("parameters", {}))
    if "attenuation" in pet.truth:
        parameters["attenuation_correction"] = dict(pet.truth["attenuation"])
    if "ac_bias" in pet.truth:
        bias = sample(pet.truth["ac_bias"], pet.truth["working_grid"].affine, inverse)
        reference = template.reference_masks[atlases.DEFAULT_REFERENCE]
        parameters["attenuation_correction"]["reference_bias"] = round(
            float(bias[reference].mean()), 6
        )
    writer.write_json(paths["parameters"], parameters)

    if write_anat:
        paths.update(_write_anat_truth(folder, base, anatomy, inverse, t1w, template))
    paths["pet_xfm"] = (
        folder
        / "pet"
        / writer.bids_name({**base, **pet.entities, "from": "pet", "to": "T1w"}, "xfm", ".json")
    )
    writer.write_json(
        paths["pet_xfm"],
        {
            "Description": "Frame f voxel v is subject world y = PetToT1w @ FrameMotion[f] @ "
            "PetGrid.affine @ v. FrameMotion maps frame world to motion-free PET world.",
            "PetToT1w": _matrix(pet.truth["pet_to_t1w"]),
            "FrameMotion": [_matrix(m) for m in pet.truth["motion"]],
            "PetGrid": pet.truth["grid"].to_json(),
            "WorkingGrid": pet.truth["working_grid"].to_json(),
            "PsfFwhmMm": round(pet.truth["fwhm_mm"], 4),
        },
    )
    return paths


def _write_anat_truth(
    folder: Path,
    base: dict,
    anatomy: Anatomy,
    inverse: np.ndarray,
    t1w: Scan | None,
    template: TemplateData,
) -> dict[str, Path]:
    """The visit's subject-to-template transforms (displacement, inverse coordinates, JSON)."""
    grid = template.grid_2mm
    paths: dict[str, Path] = {}
    xfm = {**base, "from": "T1w", "to": template.space}
    paths["displacement"] = (
        folder / "anat" / writer.bids_name({**xfm, "desc": "displacement"}, "xfm", ".nii.gz")
    )
    writer.write_nifti(
        paths["displacement"],
        _template_image(np.moveaxis(anatomy.field, 0, -1), anatomy.field_grid.affine),
    )
    paths["inverse"] = (
        folder
        / "anat"
        / writer.bids_name(
            {
                **base,
                "from": template.space,
                "to": "T1w",
                "res": naming.RESOLUTION,
                "desc": "coordinates",
            },
            "xfm",
            ".nii.gz",
        )
    )
    writer.write_nifti(paths["inverse"], _template_image(np.moveaxis(inverse, 0, -1), grid.affine))
    paths["anat_xfm"] = folder / "anat" / writer.bids_name(xfm, "xfm", ".json")
    writer.write_json(
        paths["anat_xfm"],
        {
            "Description": "T(y) = z + u(z), z = Affine @ y: subject (T1w) world mm -> "
            "template world mm (RAS). u is read trilinearly from the displacement image "
            "(last axis: x, y, z in mm, on a grid in template world).",
            "Affine": _matrix(anatomy.affine),
            "DisplacementField": paths["displacement"].name,
            "InverseCoordinates": paths["inverse"].name + ": T^-1(x) for every voxel x of "
            "the template 2 mm grid (subject world mm)",
            "T1wGrid": t1w.truth["grid"].to_json() if t1w else None,
        },
    )
    return paths


def _template_image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    image = nib.Nifti1Image(data.astype(np.float32), affine)
    image.set_qform(affine, code=4)
    image.set_sform(affine, code=4)
    return image
