"""Nipype wrapper of :mod:`taupet_bids.core.centaurz_scan`: the CenTauRz table of one scan."""

from __future__ import annotations

import os

import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from taupet_bids import centaurz
from taupet_bids.core.centaurz_scan import official_masks, scan_centaurz
from taupet_bids.core.images import check_same_grid, load_3d
from taupet_bids.errors import InputError


class _CenTauRzInputSpec(BaseInterfaceInputSpec):
    dk_table = File(exists=True, mandatory=True, desc="regional DK table (bilateral rows)")
    suvr_file = File(exists=True, mandatory=True, desc="SUVR image in template space")
    tracer = traits.Str(mandatory=True, desc="tracer name (AV1451, MK6240, ...)")
    masks_dir = Directory(exists=True, desc="official CenTauR masks, one <mask>.nii.gz each")
    reference_mask = File(
        exists=True,
        mandatory=True,
        desc=f"{centaurz.REFERENCE_REGION} mask on the SUVR grid: CenTauRz's reference region",
    )


class _CenTauRzOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="TSV: " + ", ".join(centaurz.TABLE_COLUMNS))


class CenTauRzTable(SimpleInterface):
    """CenTauRz per mask; labelled approximate unless official masks are given."""

    input_spec = _CenTauRzInputSpec
    output_spec = _CenTauRzOutputSpec

    def _run_interface(self, runtime):
        suvr_file = self.inputs.suvr_file
        check_same_grid(suvr_file, self.inputs.reference_mask)
        masks = official_masks(self.inputs.masks_dir, suvr_file) if self.inputs.masks_dir else {}
        try:
            table = scan_centaurz(
                load_3d(suvr_file),
                load_3d(self.inputs.reference_mask),
                self.inputs.tracer,
                pd.read_csv(self.inputs.dk_table, sep="\t", na_values="n/a"),
                masks,
            )
        except ValueError as err:
            raise InputError(
                suvr_file, f"CenTauRz: {err}", "check the cerebellar grey reference mask"
            ) from err
        out = os.path.join(runtime.cwd, "centaurz.tsv")
        table.to_csv(out, sep="\t", index=False, float_format="%.6f")
        self._results["out_table"] = out
        return runtime
