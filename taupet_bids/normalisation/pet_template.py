"""A tau PET template in MNI152NLin6Asym 2 mm: the voxelwise mean of MR-based SUVR images.

The MR-less ANTs baseline (:mod:`taupet_bids.normalisation.ants_baseline`) registers a native
PET to this image instead of to a T1w. It is built from this app's own MR-based outputs: every
``*_space-MNI152NLin6Asym_res-2_desc-suvr_pet.nii.gz`` of a participant-level run is already on
the template 2 mm grid, so the template is their mean, voxel by voxel (no further registration,
no iteration). The shipped file was built from a simulated training cohort; docs/pet_template.md
gives the exact commands. Build your own from your cohort's derivatives with
``taupet-bids-train pet-template DERIVATIVES... -o OUT.nii.gz`` (:func:`main`).

Voxels that are 0 or not finite in a scan count as outside its field of view (the MR-based
pipeline writes 0 where the PET does not reach) and are left out of that voxel's mean; voxels no
scan covers are 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np

from taupet_bids import __version__, naming, templates
from taupet_bids.core.images import GRID_ATOL_MM, squeeze_frame
from taupet_bids.errors import InputError

#: Shipped template, relative to the package folder.
SHIPPED = Path("data") / "pet_template" / "tpl-MNI152NLin6Asym_res-02_desc-tauSUVR_pet.nii.gz"
#: What a participant-level run writes in template space (PVC images, if any, are left out).
SUVR_PATTERN = f"*_{naming.SPACE}*suvr*.nii.gz"
#: The template is stored rounded to this many decimals (SUVR).
DECIMALS = 3


def sidecar_path(image_file: str | Path) -> Path:
    """``x.nii.gz`` -> ``x.json``."""
    path = Path(image_file)
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def pet_template_path() -> Path:
    """The tau PET template shipped with the package (its sidecar is beside it)."""
    path = Path(str(files("taupet_bids").joinpath(*SHIPPED.parts)))
    if not path.is_file():
        raise FileNotFoundError(f"the shipped tau PET template is missing: {path}")
    return path


def _template_grid() -> tuple[tuple[int, int, int], np.ndarray]:
    reference = nib.load(templates.t1w_path(templates.WORKING_RESOLUTION))
    return tuple(reference.shape[:3]), reference.affine


def _load_on_grid(path: Path, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    image = nib.load(path)
    data = squeeze_frame(np.asarray(image.dataobj, dtype=np.float64))
    if data.shape != shape or not np.allclose(image.affine, affine, atol=GRID_ATOL_MM):
        raise InputError(
            path,
            f"not on the {templates.TEMPLATE} {templates.WORKING_RESOLUTION} mm grid "
            f"(shape {data.shape}, expected {shape})",
            "use the template-space SUVR images of a participant-level run",
        )
    return data


def _reference_regions(paths: Sequence[Path]) -> list[str]:
    found = set()
    for path in paths:
        sidecar = sidecar_path(path)
        if sidecar.is_file():
            region = json.loads(sidecar.read_text()).get("ReferenceRegion")
            if region:
                found.add(str(region))
    return sorted(found)


def build_pet_template(
    suvr_files: Sequence[str | Path],
    out_file: str | Path,
    cohort_seed: int | None = None,
    command: str | None = None,
    description: str | None = None,
    decimals: int | None = DECIMALS,
) -> Path:
    """Average template-space SUVR images voxelwise; write float32 image and JSON sidecar.

    ``cohort_seed`` (the simulator seed of the cohort, if simulated), ``command`` (how the
    template was built) and ``description`` (free text on the cohort) go into the sidecar with
    the number of scans, the source files, the taupet-bids version and the date. ``decimals``
    rounds the mean (0.001 SUVR by default: far below its noise, and it halves the file size).
    """
    paths = [Path(p) for p in suvr_files]
    if not paths:
        raise InputError(None, "no SUVR images to average", "give at least one SUVR image")
    shape, affine = _template_grid()
    total = np.zeros(shape)
    count = np.zeros(shape, dtype=np.int32)
    for path in paths:
        data = _load_on_grid(path, shape, affine)
        covered = np.isfinite(data) & (data != 0)
        total[covered] += data[covered]
        count += covered
    mean = np.divide(total, count, out=np.zeros(shape), where=count > 0)
    if decimals is not None:
        mean = np.round(mean, decimals)
    mean = mean.astype(np.float32)

    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(mean, affine)
    image.set_qform(affine, code=4)
    image.set_sform(affine, code=4)
    image.header.set_data_dtype(np.float32)
    image.header.set_xyzt_units("mm")
    image.header["descrip"] = b"taupet-bids tau PET template (mean SUVR)"
    nib.save(image, out)

    brain = np.asarray(nib.load(templates.brain_mask_path()).dataobj) > 0
    sidecar = {
        "Name": "taupet-bids tau PET template (mean MR-based SUVR)",
        "Space": templates.TEMPLATE,
        "Resolution": f"res-{templates.WORKING_RESOLUTION:02d}",
        "Units": "SUVR",
        "ReferenceRegion": _reference_regions(paths),
        "NumberOfScans": len(paths),
        "RoundedToDecimals": decimals,
        "CohortSeed": cohort_seed,
        "CohortDescription": description,
        "Command": command,
        "Sources": [path.name for path in paths],
        "MinimumScansPerBrainVoxel": int(count[brain].min()) if brain.any() else 0,
        "GeneratedBy": [{"Name": "taupet-bids", "Version": __version__}],
        "Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    sidecar_path(out).write_text(json.dumps(sidecar, indent=2) + "\n")
    return out


def find_suvr_images(folders: Sequence[str | Path], pattern: str = SUVR_PATTERN) -> list[Path]:
    """Template-space SUVR images of participant-level runs (partial-volume corrected left out).

    Only files where BIDS puts them count (``sub-*/[ses-*/]pet/``, no hidden folder on the way):
    a work folder or a hidden staging copy would otherwise add the same scan twice.
    """
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise InputError(folder, "is not a folder", "give a taupet-bids derivatives folder")
        found += [
            p
            for p in sorted(folder.rglob(pattern))
            if "_pvc-" not in p.name and _in_subject_folder(p.relative_to(folder))
        ]
    return found


def _in_subject_folder(relative: Path) -> bool:
    """``.../sub-*/[ses-*/]pet/<file>`` with no hidden folder on the way."""
    folders = relative.parts[:-1]
    if any(part.startswith(".") for part in folders) or folders[-1:] != ("pet",):
        return False
    above = [part for part in folders[-3:-1] if not part.startswith("ses-")]
    return bool(above) and re.fullmatch(r"sub-[A-Za-z0-9]+", above[-1]) is not None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taupet-bids-train pet-template",
        description=(
            "Build a tau PET template in MNI152NLin6Asym 2 mm: the voxelwise mean of the "
            "template-space SUVR images of MR-based participant-level runs."
        ),
        epilog="See docs/pet_template.md.",
    )
    parser.add_argument(
        "derivatives", nargs="+", type=Path, help="taupet-bids derivatives folder(s) (searched)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="template (.nii.gz)")
    parser.add_argument(
        "--cohort-seed", type=int, help="simulator seed of the cohort, recorded in the sidecar"
    )
    parser.add_argument("--description", help="free text on the cohort, recorded in the sidecar")
    parser.add_argument(
        "--pattern", default=SUVR_PATTERN, help=f"file name pattern ({SUVR_PATTERN})"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        found = find_suvr_images(args.derivatives, args.pattern)
        if not found:
            parser.error(f"no {args.pattern} under {', '.join(map(str, args.derivatives))}")
        out = build_pet_template(
            found,
            args.output,
            cohort_seed=args.cohort_seed,
            command=shlex.join([*parser.prog.split(), *argv]),
            description=args.description,
        )
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{out}: mean of {len(found)} SUVR image(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
