"""A phantom anatomy that is not the analysis template: the ICBM 2009a symmetric head.

Phantoms warped from the template the pipeline registers to, labelled with the atlas it
measures with, flatter every number (the inverse crime): registration only undoes a deformation
of its own target, and the template labels sit exactly on the phantom's grey matter. This module
builds a second source anatomy whose brain is MNI152NLin2009aSym as nilearn ships it (a 1 mm
brain T1w with its own grey- and white-matter probability maps):

1. the Desikan-Killiany labels and the reference masks are carried over from MNI152NLin6Asym by
   one antspyx SyN registration (brain to brain, 2 mm);
2. the labels are then redrawn by 2009a's own tissue maps: a cortical label goes wherever 2009a
   has grey matter (the nearest carried-over cortical label names it), cerebral white matter
   wherever it has white matter, and the cerebellum is split by the same rule; so regions follow
   this anatomy's grey matter, not where the registration put the template's;
3. Braak, meta-temporal and reference regions are rebuilt from the redrawn labels with the same
   rules as the template's (:mod:`taupet_bids.atlases.build`);
4. the head around that brain (scalp, skull, face, orbits, sinuses, skull base) is the
   template's, carried over by the same registration, with CSF between it and the new brain;
   it is extended below the ICBM field of view (z = -72 mm) by a neck and shoulders, so a
   PET field of view of 15-26 cm cuts through tissue as in life, and split into layers (scalp and
   soft tissue, bone, meninges, air spaces) that carry their own uptake.

Building costs about a minute (mostly the registration), so the result is cached per machine
(``~/.cache/taupet-bids/phantom-anatomy``), keyed by a fingerprint of this code and the atlases.
"""

from __future__ import annotations

import hashlib
import tempfile
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from taupet_bids import atlases, templates
from taupet_bids.atlases import build
from taupet_bids.core import registration, tissue_labels
from taupet_bids.core.grids import Grid, apply_affine, linear_coordinates
from taupet_bids.simulate import partial_volume
from taupet_bids.simulate.template import (
    AIR,
    BONE,
    BRAIN,
    HEAD_THRESHOLD,
    MENINGES,
    OUTSIDE,
    SOFT_TISSUE,
    TemplateData,
    load_template,
)

SPACE = "MNI152NLin2009aSym"
_NILEARN_FILE = "datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
#: Slices (1 mm) added below the ICBM field of view for the neck and shoulders.
NECK_SLICES = 110
_PAD = ((0, 0), (0, 0), (NECK_SLICES, 0))
#: Neck: an elliptic cylinder (centre y, radii x, y in mm); shoulders below SHOULDER_Z_MM.
NECK_CENTRE_Y_MM = -10.0
NECK_RADII_MM = (52.0, 58.0)
SHOULDER_Z_MM = -150.0
NECK_TOP_MM = -70.0
SHOULDER_RADII_MM = (175.0, 75.0)
#: Probabilities above which 2009a's tissue maps call a voxel grey or white matter. The grey
#: matter map of an average template is thick (sulcal CSF blurs into it; at 0.5 it holds
#: 1080 cc); at 0.7 cortex, deep and cerebellar grey matter hold ~760 cc, nearer a real head.
GM_THRESHOLD = 0.7
WM_THRESHOLD = 0.5
#: Skull: the shell of this thickness around the intracranial space (a typical vault is 6-7 mm).
SKULL_MM = 7.0
#: Template T1w value below which a voxel inside the head is air (sinuses, nasal cavity).
AIR_T1W = 600.0
#: White-matter intensity of the analysis template's T1w, which the T1w generator expects.
TEMPLATE_WM_T1W = 7000.0


def _nilearn_image(kind: str) -> nib.Nifti1Image:
    return nib.load(build.package_data("nilearn", _NILEARN_FILE.format(kind)))


def _fingerprint() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(tissue_labels.__file__).read_bytes())
    digest.update(templates._bootstrap_fingerprint().encode())
    return digest.hexdigest()[:12]


def cache_path() -> Path:
    """Where the built anatomy is kept (one file per code version)."""
    return templates.default_home().parent / "phantom-anatomy" / f"{SPACE}-{_fingerprint()}.npz"


def _carry_over(reference: nib.Nifti1Image, brain: np.ndarray, work: Path) -> dict:
    """MNI152NLin6Asym's DK labels, reference masks, head T1w and brain mask on the 2009a grid.

    One SyN registration, brain to brain at 2 mm; the grid is the 2009a 1 mm grid extended
    downwards by :data:`NECK_SLICES` so the template's face and upper neck come along.
    """
    fixed = work / "fixed.nii.gz"
    data = np.asarray(reference.dataobj, dtype=np.float32) * brain
    nib.save(nib.Nifti1Image(data, reference.affine), fixed)
    result = registration.register(
        str(fixed), str(templates.t1w_path(2, brain=True)), str(work / "to2009a_"),
        transform_type="SyN", seed=1, metric="mattes", fixed_resample_mm=2.0,
    )  # fmt: skip
    grid = work / "grid.nii.gz"
    nib.save(nib.Nifti1Image(np.pad(data, _PAD), _extended_affine(reference.affine)), grid)
    sources = {"DK": templates.atlas_path("DK", 1), "head": templates.t1w_path(1)}
    sources["brain"] = templates.brain_mask_path(1)
    for label in atlases.reference_regions():
        sources[label] = templates.reference_mask_path(label, 1)
    moved = {}
    for name, path in sources.items():
        out = work / f"{name}.nii.gz"
        registration.apply_transforms(
            str(path), str(grid), result["forward_transforms"], str(out),
            interpolation="linear" if name == "head" else "genericLabel",
        )  # fmt: skip
        moved[name] = np.asarray(nib.load(out).dataobj)
    moved["template_to_source_mm"] = _point_map(result)
    return moved


def _point_map(result: dict) -> np.ndarray:
    """Where each voxel centre of the template's 2 mm grid lies in this anatomy (mm, world).

    The registration above maps 2009a points to template points; its inverse list carries a
    template point to the 2009a point of the same anatomy. Kept so that training targets can
    follow the anatomy instead of assuming the two MNI spaces coincide (``template_to_source``).
    """
    grid = nib.load(templates.t1w_path(2))
    points = linear_coordinates(grid.affine, grid.shape[:3])
    return registration.transform_points(
        points, result["inverse_transforms"], result["inverse_invert_flags"]
    )


def _extended_affine(affine: np.ndarray) -> np.ndarray:
    out = affine.copy()
    out[2, 3] -= NECK_SLICES * affine[2, 2]
    return out


def redraw_labels(dk: np.ndarray, gm: np.ndarray, wm: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Carried-over DK labels made to follow this anatomy's own grey and white matter."""
    is_gm = gm >= GM_THRESHOLD
    return tissue_labels.redraw_labels(dk, is_gm, (wm >= WM_THRESHOLD) & ~is_gm, brain)


def _neck(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """Neck and shoulders below the ICBM field of view (a boolean mask on the extended grid)."""
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    x = affine[0, 0] * i + affine[0, 3]
    y = affine[1, 1] * j + affine[1, 3] - NECK_CENTRE_Y_MM
    mask = np.zeros(shape, bool)
    for k in range(shape[2]):
        z = affine[2, 2] * k + affine[2, 3]
        if z > NECK_TOP_MM:
            continue
        if z < SHOULDER_Z_MM:
            grow = min(1.0, (SHOULDER_Z_MM - z) / 25.0)
            rx = NECK_RADII_MM[0] + grow * (SHOULDER_RADII_MM[0] - NECK_RADII_MM[0])
            ry = NECK_RADII_MM[1] + grow * (SHOULDER_RADII_MM[1] - NECK_RADII_MM[1])
        else:
            rx, ry = NECK_RADII_MM
        mask[..., k] = (x / rx) ** 2 + (y / ry) ** 2 <= 1.0
    return mask


def _layers(
    head: np.ndarray, t1w: np.ndarray, brain: np.ndarray, intracranial: np.ndarray
) -> np.ndarray:
    """Head layers on one grid: brain, meninges (and CSF), bone, air spaces and soft tissue."""
    layers = np.where(head, SOFT_TISSUE, OUTSIDE).astype(np.uint8)
    layers[head & (t1w < AIR_T1W)] = AIR
    skull = ndimage.distance_transform_edt(~intracranial) <= SKULL_MM
    layers[head & skull] = BONE
    meninges = ndimage.distance_transform_edt(~brain) <= 3.0
    layers[head & (intracranial | meninges) & ~brain] = MENINGES
    layers[brain] = BRAIN
    return layers


def _head_t1w(moved: dict, t1w: np.ndarray, brain: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """The template's head around 2009a's brain, in the template's T1w intensity units.

    Outside 2009a's brain the carried-over template head (scalp, skull, face, sinuses); where
    the template had brain that 2009a has not, CSF; inside 2009a's brain, 2009a's own T1w scaled
    so its white matter matches the template's.
    """
    head = moved["head"].astype(np.float32)
    csf = float(np.percentile(head[(moved["brain"] > 0) & ~brain], 10))
    head[(moved["brain"] > 0) | brain] = csf
    scale = TEMPLATE_WM_T1W / float(np.median(t1w[wm > 0.9]))
    head[brain] = t1w[brain] * scale
    return head


def build_arrays() -> dict[str, np.ndarray]:
    """Every array of the other anatomy (1 mm head T1w; 2 mm labels, masks and layers)."""
    templates.ensure_templateflow()
    reference = _nilearn_image("t1")
    gm, wm = (np.asarray(_nilearn_image(k).dataobj, np.float32) / 255.0 for k in ("gm", "wm"))
    brain = ndimage.binary_fill_holes(ndimage.binary_closing((gm + wm) > 0.5, iterations=3))
    with tempfile.TemporaryDirectory(prefix="taupet-anatomy-") as work:
        moved = _carry_over(reference, brain, Path(work))
    t1w = reference.get_fdata(dtype=np.float32)
    t1w, gm, wm, brain = (np.pad(a, _PAD) for a in (t1w, gm, wm, brain))
    dk = redraw_labels(moved.pop("DK").astype(np.int32), gm, wm, brain)
    head_t1w = _head_t1w(moved, t1w, brain, wm)
    affine = _extended_affine(reference.affine)
    neck = _neck(head_t1w.shape, affine) & (head_t1w < HEAD_THRESHOLD)
    scalp = (head_t1w > HEAD_THRESHOLD) & (moved["brain"] == 0)
    head_t1w[neck] = float(np.median(head_t1w[scalp]))
    head = ndimage.binary_fill_holes(head_t1w > HEAD_THRESHOLD) | brain | neck
    arrays = {
        "template_to_source_mm": moved.pop("template_to_source_mm"),
        "head_t1w": head_t1w,
        "affine_1mm": affine,
        "DK": build.downsample_labels(dk).astype(np.int32),
        "Braak": build.downsample_labels(build.braak_from_dk(dk)).astype(np.int32),
        "MetaTemporal": build.downsample_labels(build.metatemporal_from_dk(dk)).astype(np.int32),
        "brain_mask": build.downsample_labels(brain),
        "head_mask": build.downsample_labels(head),
        "tissue": build.downsample_labels(
            _layers(head, head_t1w, brain, brain | (moved["brain"] > 0))
        ),
        "gm_fraction": build.downsample_intensity(gm),
        "wm_fraction": build.downsample_intensity(wm),
    }
    for label, spec in atlases.reference_regions().items():
        mask = (moved[label] > 0) & np.isin(dk, atlases.dk_indices(spec["dk_regions"]))
        arrays[f"reference_{label}"] = build.downsample_labels(mask)
    return arrays


def _load_arrays(keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The cached anatomy (built first if missing); ``keys`` reads only those arrays."""
    path = cache_path()
    if not path.exists():
        arrays = build_arrays()
        templates._write_atomic(path, lambda tmp: np.savez_compressed(tmp, **arrays))
        for stale in path.parent.glob(f"{SPACE}-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
    with np.load(path) as stored:
        return {key: stored[key] for key in (keys or stored.files)}


@cache
def load_other_anatomy() -> TemplateData:
    """The 2009a phantom anatomy (built once per machine, then read from the cache)."""
    arrays = _load_arrays()
    affine_1mm = arrays["affine_1mm"]
    affine_2mm = affine_1mm.copy()
    affine_2mm[:3, :3] *= 2.0
    dk = arrays["DK"]
    grid_2mm = Grid(tuple(dk.shape), affine_2mm)
    head_mask = arrays["head_mask"] > 0
    above_neck = head_mask.copy()
    above_neck[..., : NECK_SLICES // 2] = False
    centre = np.array(ndimage.center_of_mass(above_neck))
    references = {label: arrays[f"reference_{label}"] > 0 for label in atlases.reference_regions()}
    return TemplateData(
        head_t1w=arrays["head_t1w"],
        grid_1mm=Grid(tuple(arrays["head_t1w"].shape), affine_1mm),
        grid_2mm=grid_2mm,
        dk=dk,
        atlas_images={name: arrays[name] for name in atlases.ATLAS_NAMES},
        reference_masks=references,
        brain_mask=arrays["brain_mask"] > 0,
        head_mask=head_mask,
        space=SPACE,
        centre=affine_2mm[:3, :3] @ centre + affine_2mm[:3, 3],
        tissue=arrays["tissue"],
        fractions=partial_volume.tissue_fractions(
            dk, arrays["brain_mask"] > 0, arrays["gm_fraction"], arrays["wm_fraction"]
        ),
    )


#: Phantom anatomies: ``other`` (this module, the default) or ``template`` (the analysis template).
ANATOMIES = ("other", "template")


@cache
def _point_map_2mm() -> np.ndarray:
    return _load_arrays(("template_to_source_mm",))["template_to_source_mm"]


@cache
def _template_affine_2mm() -> np.ndarray:
    return nib.load(templates.t1w_path(2)).affine


def template_to_source(points: np.ndarray, name: str) -> np.ndarray:
    """Template-world points (3, ...) moved to the same anatomical points of anatomy ``name``.

    Identity for the template itself; for the other anatomy, trilinear interpolation of the
    registration's point map (template 2 mm grid), with points outside that grid left where
    they are (they lie outside the head).
    """
    if name == "template":
        return points
    if name != "other":
        raise ValueError(f"anatomy must be one of {ANATOMIES}, not {name!r}")
    mapping = _point_map_2mm()
    flat = points.reshape(3, -1).astype(np.float64)
    voxels = apply_affine(np.linalg.inv(_template_affine_2mm()), flat)
    inside = np.all((voxels >= 0) & (voxels <= np.array(mapping.shape[1:])[:, None] - 1), axis=0)
    out = flat.copy()
    for axis in range(3):
        values = ndimage.map_coordinates(mapping[axis], voxels[:, inside], order=1)
        out[axis, inside] = values
    return out.reshape(points.shape).astype(points.dtype)


def source_anatomy(name: str) -> TemplateData:
    """The anatomy phantoms are made from, by name (see :data:`ANATOMIES`)."""
    if name == "other":
        return load_other_anatomy()
    if name == "template":
        return load_template()
    raise ValueError(f"anatomy must be one of {ANATOMIES}, not {name!r}")
