"""Nipype wrappers of :mod:`taupet_bids.core.pvc` and :mod:`taupet_bids.core.pvc_segmentation`.

``PVCSegmentation`` writes the label image that covers every voxel, and its label table.
``PartialVolumeCorrection`` applies GTM, RBV or Müller-Gärtner to an SUVR or PET image on the
grid of that label image (the template's, or the PET's once the labels are pulled onto it) and
writes the corrected image, a regional table per label in the columns of
:data:`taupet_bids.core.regions.STAT_COLUMNS`, and each label's corrected value.
``PaintRegions`` writes those values on the template labels, for the usual tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from taupet_bids.core import pvc
from taupet_bids.core.images import check_same_grid, load_3d, out_path, save_like
from taupet_bids.core.pvc_segmentation import (
    grey_matter_labels,
    head_mask,
    mark_missing_data,
    mixing_grey_labels,
    pvc_segmentation,
    segmentation_table,
    subject_labels,
    tissue_mixing,
)
from taupet_bids.core.regions import STAT_COLUMNS, read_label_table, regional_statistics
from taupet_bids.core.suvr import subject_reference
from taupet_bids.errors import InputError
from taupet_bids.interfaces.segmentation import tissue_volumes

LOG = logging.getLogger("nipype.interface")


class _SegInputSpec(BaseInterfaceInputSpec):
    dk_file = File(exists=True, mandatory=True, desc="DK label image (template space)")
    brain_mask = File(exists=True, mandatory=True, desc="template brain mask, same grid")
    t1w_file = File(exists=True, mandatory=True, desc="template head T1w, same grid")
    reference_mask = File(
        exists=True, requires=["reference_region"], desc="SUVR reference mask: its own label"
    )
    reference_region = traits.Str(desc="reference region name (its tissue class and row name)")
    tissues_file = File(
        exists=True,
        desc="4-D GM, WM, brain mask of the subject on the same grid: redraw cortex, white "
        "matter and the reference by the subject's own tissues (--regional-mask subject-gm)",
    )


class _SegOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="label image covering every voxel")
    labels_file = File(exists=True, desc="TSV: index, name, tissue")
    reference_mask = traits.Str(desc="template, subject-gm or template-fallback")


class PVCSegmentation(SimpleInterface):
    """The PVC label image: DK labels + rest of brain mask + head shells + air (label 0).

    With ``tissues_file`` the cortex, white matter and reference follow the subject's grey and
    white matter (:func:`subject_labels`; :func:`subject_reference` without its edge margin).
    The margin keeps sinus spill-over out of an uncorrected reference mean; here the correction
    models the spill-over, and a reference carved out of the cerebellar cortex would leave a thin
    shell of the same tissue beside it, under another label, that the correction cannot tell
    apart from it: their values then trade off scan by scan (docs/pvc.md, "Reference region").
    """

    input_spec = _SegInputSpec
    output_spec = _SegOutputSpec

    def _run_interface(self, runtime):
        dk_file = self.inputs.dk_file
        for other in (self.inputs.brain_mask, self.inputs.t1w_file):
            check_same_grid(dk_file, other)
        image = nib.load(dk_file)
        zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
        brain = load_3d(self.inputs.brain_mask) > 0
        head = head_mask(load_3d(self.inputs.t1w_file), brain)
        dk = np.rint(load_3d(dk_file)).astype(np.int32)
        tissues = None
        if isdefined(self.inputs.tissues_file):
            check_same_grid(dk_file, self.inputs.tissues_file)
            tissues = tissue_volumes(self.inputs.tissues_file)
            dk = subject_labels(dk, brain, tissues["GM"], tissues["WM"], tissues["brain"] > 0)
        reference, reference_region, kind = None, None, "template"
        if isdefined(self.inputs.reference_mask):
            check_same_grid(dk_file, self.inputs.reference_mask)
            reference = load_3d(self.inputs.reference_mask) > 0
            reference_region = self.inputs.reference_region
            if tissues is not None:  # the subject's grey matter of it, without the edge margin
                reference, kind = subject_reference(
                    reference, tissues["GM"], tissues["brain"], zooms, edge_margin_mm=0.0
                )
                reference = reference > 0
        seg = pvc_segmentation(dk, brain, head, reference, zooms=zooms)
        self._results["reference_mask"] = kind
        out = out_path(dk_file, "_pvcseg")
        nib.save(nib.Nifti1Image(seg.astype(np.int16), image.affine, image.header), out)
        table = out_path(dk_file, "_pvcseg", ext=".tsv")
        segmentation_table(reference_region).to_csv(table, sep="\t", index=False)
        self._results.update(out_file=out, labels_file=table)
        return runtime


class _PVCInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D SUVR or PET image")
    seg_file = File(exists=True, mandatory=True, desc="label image covering every voxel")
    labels_file = File(
        exists=True, mandatory=True, desc="TSV: index, name (and tissue, for MG grey matter)"
    )
    method = traits.Enum(*pvc.PVC_METHODS, mandatory=True, desc="gtm | rbv | mg")
    fwhm_mm = traits.Either(
        traits.Float,
        traits.List(traits.Float, minlen=3, maxlen=3),
        mandatory=True,
        desc="PSF FWHM in mm of the image (isotropic, or x y z); the scan's plan resolves it "
        "(taupet_bids.plan.pvc_psf: --pvc-fwhm, the scanner table, or the sidecar's filter)",
    )
    gm_labels = traits.List(traits.Int, desc="MG grey-matter labels (default: tissue column)")
    min_gm_fraction = traits.Float(
        pvc.MIN_GM_FRACTION, usedefault=True, desc="MG: smallest blurred grey fraction kept"
    )
    reference_label = traits.Int(
        desc="label of the SUVR reference region: divide the result by its corrected value"
    )
    tissues_file = File(
        exists=True,
        desc="4-D GM, WM, brain mask of the subject on the image's grid: brain voxels are shared "
        "between grey matter, white matter and CSF by their fractions (soft regions)",
    )


class _PVCOutputSpec(TraitedSpec):
    out_file = File(
        exists=True,
        desc="corrected image (gtm: each label painted with its GTM value; mg: NaN off grey)",
    )
    out_table = File(exists=True, desc="TSV per label: " + ", ".join(STAT_COLUMNS))
    out_values = File(exists=True, desc="TSV per label: index, value (mean of out_file)")
    fwhm_mm = traits.List(traits.Float, desc="PSF FWHM used (x, y, z mm)")
    condition_number = traits.Float(desc="condition number of the GTM matrix")
    reference_value = traits.Float(
        desc="corrected reference value the result was divided by (1 without reference_label)"
    )


class PartialVolumeCorrection(SimpleInterface):
    """GTM (regional), RBV or Müller-Gärtner (voxel-wise) partial-volume correction."""

    input_spec = _PVCInputSpec
    output_spec = _PVCOutputSpec

    def _grey_matter(self) -> list[int]:
        if isdefined(self.inputs.gm_labels):
            return self.inputs.gm_labels
        table = pd.read_csv(self.inputs.labels_file, sep="\t")
        if "tissue" not in table.columns:
            raise InputError(
                self.inputs.labels_file, "no tissue column to find grey matter", "give gm_labels"
            )
        return grey_matter_labels(table)

    def _fwhm(self) -> list[float]:
        return [float(v) for v in np.broadcast_to(np.asarray(self.inputs.fwhm_mm, float), (3,))]

    def _run_interface(self, runtime):
        in_file, seg_file = self.inputs.in_file, self.inputs.seg_file
        check_same_grid(in_file, seg_file)
        image = nib.load(in_file)
        fwhm = self._fwhm()
        sigma = pvc.fwhm_to_sigma(fwhm, image.header.get_zooms()[:3])
        data, seg = load_3d(in_file), np.rint(load_3d(seg_file)).astype(np.int64)
        names = read_label_table(self.inputs.labels_file)
        if not np.all(np.isfinite(data)):
            raise InputError(in_file, "has non-finite voxels; PVC needs a finite image")
        seg = mark_missing_data(seg, data)
        if pvc.NO_DATA_LABEL in set(np.unique(seg).tolist()):
            names = {**names, pvc.NO_DATA_LABEL: "no-pet-data"}
        method = self.inputs.method
        mixing = None
        if isdefined(self.inputs.tissues_file):
            check_same_grid(in_file, self.inputs.tissues_file)
            tissues = tissue_volumes(self.inputs.tissues_file)
            grey = mixing_grey_labels(pd.read_csv(self.inputs.labels_file, sep="\t"))
            mixing = tissue_mixing(seg, tissues["GM"], tissues["WM"], grey or None)
        try:
            result = pvc.correct(
                method,
                data,
                seg,
                sigma,
                labels=names,
                gm_labels=self._grey_matter() if method == "mg" else None,
                min_gm_fraction=self.inputs.min_gm_fraction,
                reference_label=(
                    self.inputs.reference_label if isdefined(self.inputs.reference_label) else None
                ),
                mixing=mixing,
            )
        except ValueError as err:
            raise InputError(
                seg_file, f"{err} (in {Path(in_file).name})",
                "use the PVCSegmentation label image; the reference region must be a label of "
                "its own (PVCSegmentation with a reference_mask) inside the PET's field of view",
            ) from err  # fmt: skip
        corrected = np.where(seg == pvc.NO_DATA_LABEL, np.nan, result.image)
        out = save_like(corrected, image, out_path(in_file, f"_pvc-{method}"))
        voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000.0
        present = {index: name for index, name in names.items() if index in set(result.gtm.labels)}
        table = regional_statistics(corrected, seg, voxel_ml, present)
        table_file = out_path(in_file, f"_pvc-{method}_regions", ext=".tsv")
        table.to_csv(table_file, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        values_file = out_path(in_file, f"_pvc-{method}_values", ext=".tsv")
        pvc.regional_values(corrected, seg, result.gtm.labels).to_csv(
            values_file, sep="\t", index=False, float_format="%.8g", na_rep="n/a"
        )
        self._results.update(
            out_file=out,
            out_table=table_file,
            out_values=values_file,
            fwhm_mm=fwhm,
            condition_number=result.gtm.condition_number,
            reference_value=result.reference_value,
        )
        return runtime


class _PaintInputSpec(BaseInterfaceInputSpec):
    seg_file = File(exists=True, mandatory=True, desc="label image to paint (e.g. template grid)")
    values_file = File(exists=True, mandatory=True, desc="TSV: index, value")


class _PaintOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="each label painted with its value (0 where absent)")


class PaintRegions(SimpleInterface):
    """Regional values (e.g. a GTM solved in PET space) painted on another grid's labels.

    Regional values do not depend on the grid they were solved on, so a GTM solved on the
    subject's PET can be written on the template atlas without resampling (and blurring) it.
    """

    input_spec = _PaintInputSpec
    output_spec = _PaintOutputSpec

    def _run_interface(self, runtime):
        values = pd.read_csv(self.inputs.values_file, sep="\t", na_values="n/a")
        image = nib.load(self.inputs.seg_file)
        seg = np.rint(load_3d(self.inputs.seg_file)).astype(np.int64)
        # labels the values do not cover (lost when the atlas was pulled onto the PET grid, or
        # outside its field of view) stay undefined rather than reading 0, and are named
        known = dict(zip(values["index"], values["value"], strict=True))
        # (NaN values, e.g. MG off grey matter, are by design and not reported)
        missing = sorted(set(np.unique(seg).tolist()) - set(known))
        if missing:
            LOG.warning("%s: no corrected value for labels %s; their regions are left out of "
                        "the tables' means", self.inputs.values_file, missing[:20])  # fmt: skip
        painted = pvc.paint(seg, known, fill=np.nan)
        out = out_path(self.inputs.values_file, "_painted")
        self._results["out_file"] = save_like(painted, image, out)
        return runtime
