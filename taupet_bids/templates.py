"""TemplateFlow access, and the offline bootstrap of TEMPLATEFLOW_HOME.

TemplateFlow unpacks a skeleton of 0-byte placeholders and downloads a file the first time
``templateflow.api.get`` asks for it. With no network, we fill the placeholders of the working
template (MNI152NLin6Asym, the space the Desikan-Killiany atlas was registered to) from data
that pip packages ship, and add our region images under TemplateFlow names. Files that are
already real (a user with a full TemplateFlow) are never overwritten, so TemplateFlow behaves
as it always does for everything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np

from taupet_bids import __version__, atlases
from taupet_bids.atlases import build

TEMPLATE = "MNI152NLin6Asym"
#: Resolution (TemplateFlow ``res-``) of template-space outputs: 2 mm suits PET.
WORKING_RESOLUTION = 2
_SUITPY_T1W = "templates/tpl-MNI152NLin6Asym_T1w.nii.gz"
_SUITPY_MASK = "templates/tpl-MNI152NLin6Asym-brain_mask.nii.gz"
#: suitpy's copy extends 20 slices below TemplateFlow's grid (z origin -92 mm, not -72 mm).
_SUITPY_EXTRA_SLICES = 20


def default_home() -> Path:
    """Where taupet-bids keeps its TemplateFlow copy when TEMPLATEFLOW_HOME is not set."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "taupet-bids" / "templateflow"


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file so concurrent participants never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix="".join(path.suffixes))
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _needs_data(path: Path) -> bool:
    return not path.exists() or path.stat().st_size == 0


def _save(path: Path, data: np.ndarray, resolution: int, overwrite: bool) -> None:
    if not (overwrite or _needs_data(path)):
        return
    _, affine = build.GRIDS[resolution]
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=4)
    img.set_sform(affine, code=4)
    _write_atomic(path, lambda tmp: nib.save(img, tmp))


def _template_images(resolution: int) -> dict[str, np.ndarray]:
    """Head T1w, brain mask and brain T1w on one TemplateFlow grid, from suitpy's copy."""
    t1w = nib.load(build.package_data("SUITPy", _SUITPY_T1W))
    mask = nib.load(build.package_data("SUITPy", _SUITPY_MASK))
    shape, affine = build.GRIDS[1]
    crop = slice(_SUITPY_EXTRA_SLICES, _SUITPY_EXTRA_SLICES + shape[2])
    expected = affine.copy()
    expected[2, 3] -= _SUITPY_EXTRA_SLICES
    if not np.allclose(t1w.affine, expected):
        raise RuntimeError(f"unexpected grid for the suitpy MNI152NLin6Asym T1w: {t1w.affine}")
    head = np.asarray(t1w.dataobj)[..., crop].astype(np.float32)
    brain_mask = (np.asarray(mask.dataobj)[..., crop] > 0).astype(np.uint8)
    if resolution == 2:
        head = build.downsample_intensity(head)
        brain_mask = build.downsample_labels(brain_mask)
    return {"T1w": head, "desc-brain_mask": brain_mask, "desc-brain_T1w": head * brain_mask}


def _bootstrap_fingerprint() -> str:
    """Changes whenever the region definitions or the code that builds them change."""
    digest = hashlib.sha256(__version__.encode())
    for resource in sorted(files(atlases).iterdir(), key=lambda r: r.name):
        if resource.name.endswith((".tsv", ".json", ".py")):
            digest.update(resource.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def _bootstrap(home: Path) -> bool:
    folder = home / f"tpl-{TEMPLATE}"
    marker = folder / f".taupet-bids-{_bootstrap_fingerprint()}"
    if marker.exists():
        return False
    images = {resolution: _template_images(resolution) for resolution in build.GRIDS}
    regions = build.region_images_1mm(images[1]["desc-brain_mask"])
    for resolution in build.GRIDS:
        prefix = folder / f"tpl-{TEMPLATE}_res-{resolution:02d}_"
        # TemplateFlow's own files: fill placeholders only, never replace a real download.
        for name, data in images[resolution].items():
            _save(Path(f"{prefix}{name}.nii.gz"), data, resolution, overwrite=False)
        # Our region images: rewritten whenever their definitions change.
        for name, data in regions.items():
            data = data if resolution == 1 else build.downsample_labels(data)
            _save(Path(f"{prefix}{name}.nii.gz"), data, resolution, overwrite=True)
    for atlas in atlases.ATLAS_NAMES:
        rows = atlases.atlas_table(atlas)
        text = "index\tname\n" + "".join(f"{r['index']}\t{r['name']}\n" for r in rows)
        tsv = folder / f"tpl-{TEMPLATE}_atlas-{atlas}_dseg.tsv"
        _write_atomic(tsv, lambda tmp, text=text: tmp.write_text(text))
    _write_atomic(marker, lambda tmp: tmp.write_text(json.dumps({"version": __version__})))
    return True


#: Homes already bootstrapped in this process: the check hashes files, so do it once.
_READY: set[Path] = set()


def ensure_templateflow(home: Path | None = None) -> Path:
    """Make ``templateflow.api.get`` answer offline for the working template; return the home.

    Must run before anything imports templateflow with another home: TemplateFlow reads
    TEMPLATEFLOW_HOME once, at import.
    """
    if home is not None:
        os.environ["TEMPLATEFLOW_HOME"] = str(home)
    os.environ.setdefault("TEMPLATEFLOW_HOME", str(default_home()))
    import templateflow.conf as tf_conf

    tf_home = Path(tf_conf.TF_HOME)
    if str(tf_home) != os.environ["TEMPLATEFLOW_HOME"]:
        raise RuntimeError(
            f"TemplateFlow was imported with home {tf_home} before taupet-bids could set "
            f"{os.environ['TEMPLATEFLOW_HOME']}; call ensure_templateflow() first"
        )
    if tf_home in _READY:
        return tf_home
    if _bootstrap(tf_home):
        # New files were added after TemplateFlow may have indexed its home: index again.
        tf_conf._cache.__dict__.pop("layout", None)
    _READY.add(tf_home)
    return tf_home


def get(resolution: int = WORKING_RESOLUTION, **entities) -> Path:
    """One file of the working template through the TemplateFlow API (offline-ready)."""
    ensure_templateflow()
    from templateflow import api

    found = api.get(TEMPLATE, resolution=resolution, **entities)
    if isinstance(found, list):
        raise LookupError(f"TemplateFlow query {entities} matched {len(found)} files, expected 1")
    path = Path(found)
    if _needs_data(path):
        raise FileNotFoundError(f"TemplateFlow returned an empty placeholder: {path}")
    return path


def atlas_path(atlas: str, resolution: int = WORKING_RESOLUTION) -> Path:
    """Labelled image of one atlas (DK, Braak, MetaTemporal) in template space."""
    return get(resolution, atlas=atlas, suffix="dseg", extension=".nii.gz")


def atlas_labels_path(atlas: str) -> Path:
    """TSV (index, name) of one atlas, as TemplateFlow stores it."""
    ensure_templateflow()
    from templateflow import api

    return Path(api.get(TEMPLATE, atlas=atlas, suffix="dseg", extension=".tsv"))


def reference_mask_path(label: str, resolution: int = WORKING_RESOLUTION) -> Path:
    """Mask of one reference region (see atlases/reference_regions.json)."""
    if label not in atlases.reference_regions():
        raise KeyError(
            f"unknown reference region {label!r}; choose from {list(atlases.reference_regions())}"
        )
    return get(resolution, label=label, suffix="mask", extension=".nii.gz")


def t1w_path(resolution: int = WORKING_RESOLUTION, brain: bool = False) -> Path:
    """The template T1w, with head (default) or skull-stripped."""
    return get(resolution, desc="brain" if brain else None, suffix="T1w", extension=".nii.gz")


def brain_mask_path(resolution: int = WORKING_RESOLUTION) -> Path:
    """The template brain mask."""
    return get(resolution, desc="brain", suffix="mask", extension=".nii.gz")
