"""Joining regional tables: each atlas table ends with the reference region's own row."""

from __future__ import annotations

import os

import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
)


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
