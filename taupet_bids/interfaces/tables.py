"""Regional tables: joining them (each ends with the reference region's own row), and the
per-scan Braak stage table computed from the seg-Braak tables."""

from __future__ import annotations

import os

import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from taupet_bids import staging


class _JoinInputSpec(BaseInterfaceInputSpec):
    in_tables = InputMultiObject(File(exists=True), mandatory=True, desc="TSVs, same columns")


class _JoinOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="the rows of every input, in order")


class JoinTables(SimpleInterface):
    """Concatenate TSV tables that share their columns."""

    input_spec = _JoinInputSpec
    output_spec = _JoinOutputSpec

    def _run_interface(self, runtime):
        tables = [pd.read_csv(path, sep="\t", na_values="n/a") for path in self.inputs.in_tables]
        columns = list(tables[0].columns)
        for path, table in zip(self.inputs.in_tables, tables, strict=True):
            if list(table.columns) != columns:
                raise ValueError(f"{path}: columns {list(table.columns)} differ from {columns}")
        out = os.path.join(runtime.cwd, "joined.tsv")
        joined = pd.concat(tables, ignore_index=True)
        joined.to_csv(out, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        self._results["out_table"] = out
        return runtime


class _BraakStageInputSpec(BaseInterfaceInputSpec):
    braak_tables = InputMultiObject(
        File(exists=True), mandatory=True, desc="seg-Braak tables, in the order of methods"
    )
    methods = traits.List(
        traits.Str, mandatory=True, desc="PVC method of each table: none, gtm, rbv or mg"
    )
    tracer = traits.Str("", usedefault=True, desc="canonical tracer name (flortaucipir, ...)")
    reference_region = traits.Str(mandatory=True, desc="reference region label (InfCerebGrey)")
    uncorrected_thresholds = traits.List(
        traits.Float, minlen=3, maxlen=3, desc="user thresholds (I/II, III/IV, V/VI), no PVC"
    )
    uncorrected_citation = traits.Str(desc="where uncorrected_thresholds come from")


class _BraakStageOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="one row per method (taupet_bids.staging.stage_table)")


class BraakStageTable(SimpleInterface):
    """Braak stage of one scan from fixed thresholds (published, or the user's), a row per table."""

    input_spec = _BraakStageInputSpec
    output_spec = _BraakStageOutputSpec

    def _run_interface(self, runtime):
        if len(self.inputs.braak_tables) != len(self.inputs.methods):
            raise ValueError(
                f"{len(self.inputs.braak_tables)} Braak tables for {len(self.inputs.methods)} "
                "methods"
            )
        tables = {
            method: pd.read_csv(path, sep="\t", na_values="n/a")
            for method, path in zip(self.inputs.methods, self.inputs.braak_tables, strict=True)
        }
        uncorrected = None
        if isdefined(self.inputs.uncorrected_thresholds):
            uncorrected = staging.user_threshold_set(
                tuple(self.inputs.uncorrected_thresholds),
                self.inputs.uncorrected_citation if isdefined(self.inputs.uncorrected_citation)
                else "",
                self.inputs.reference_region,
            )  # fmt: skip
        table = staging.stage_table(
            tables, self.inputs.tracer or None, self.inputs.reference_region, uncorrected
        )
        out = os.path.join(runtime.cwd, "braakstage.tsv")
        table.to_csv(out, sep="\t", index=False, float_format="%.6f", na_rep="n/a")
        self._results["out_table"] = out
        return runtime
