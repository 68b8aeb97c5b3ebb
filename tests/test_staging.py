"""Positivity and Braak staging rules on constructed inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taupet_bids import staging

FLAT = {stage: 1.5 for stage in staging.STAGES}


def _suvr(**high: float) -> dict[str, float]:
    values = dict.fromkeys(staging.STAGES, 1.0)
    values.update(high)
    return values


def test_positivity_flips_at_the_cutpoint() -> None:
    cut = staging.cutpoint_for("flortaucipir")
    assert cut.value == pytest.approx(1.23)
    assert staging.is_positive(cut.value - 1e-6, cut) is False
    assert staging.is_positive(cut.value, cut) is True
    assert staging.is_positive(math.nan, cut) is None


def test_user_cutpoint_wins_and_unknown_tracers_have_none() -> None:
    assert staging.cutpoint_for("flortaucipir", 1.4).value == 1.4
    assert staging.cutpoint_for("MK6240") is None
    assert staging.is_positive(2.0, staging.cutpoint_for("MK6240")) is None
    assert staging.cutpoint_for("MK6240", 1.3).value == 1.3


@pytest.mark.parametrize(
    ("high", "stage", "conforming"),
    [
        ({}, 0, True),
        ({"I": 2.0}, 2, True),  # II is not assessed: reached with I
        ({"I": 2.0, "III": 2.0}, 3, True),
        ({"I": 2.0, "III": 2.0, "IV": 2.0, "V": 2.0, "VI": 2.0}, 6, True),
        ({"I": 2.0, "IV": 2.0}, 2, False),  # III normal breaks the chain
        ({"III": 2.0}, 0, False),  # no Braak I: stage 0, flagged
        ({"II": 3.0}, 0, True),  # hippocampal spill-in alone stages nothing
    ],
)
def test_hierarchical_stage(high: dict, stage: int, conforming: bool) -> None:
    estimate = staging.braak_stage(_suvr(**high), FLAT)
    assert (estimate.stage, estimate.conforming) == (stage, conforming)


def test_missing_values_count_as_normal() -> None:
    values = _suvr(I=2.0, III=np.nan)
    assert staging.braak_stage(values, FLAT).stage == 2


def test_reference_thresholds_need_enough_scans() -> None:
    rng = np.random.default_rng(0)
    braak = pd.DataFrame(rng.normal(1.1, 0.05, (staging.MIN_REFERENCE_SCANS, 6)),
                         columns=list(staging.STAGES))  # fmt: skip
    thresholds = staging.reference_thresholds(braak)
    expected = braak["I"].mean() + staging.N_SD * braak["I"].std()
    assert thresholds["I"] == pytest.approx(expected)
    assert staging.reference_thresholds(braak.iloc[:-1]) is None


def test_fixed_thresholds_use_the_cutpoint_everywhere() -> None:
    cut = staging.CutPoint(1.3, "test")
    assert set(staging.fixed_thresholds(cut).values()) == {1.3}


# Per-scan staging with the published (Maass et al. 2017) PVC thresholds ----------------------

MAASS = staging.MAASS2017_PVC.thresholds


def _composites(i_ii: float, iii_iv: float, v_vi: float) -> dict[str, float]:
    return dict(zip(staging.COMPOSITES, (i_ii, iii_iv, v_vi), strict=True))


def test_published_thresholds_are_maass_2017() -> None:
    assert dict(MAASS) == {"BraakI_II": 1.13, "BraakIII_IV": 1.30, "BraakV_VI": 1.87}
    assert staging.MAASS2017_PVC.reference_region == "InfCerebGrey"
    assert "NeuroImage 157:448-463" in staging.MAASS2017_PVC.citation


#: Simulated subjects whose PVC composites sit clearly inside one stage (composite SUVRs in
#: the ranges of Maass et al. 2017, Fig. 1), with the stage they must get.
KNOWN_STAGE = {
    "young control": ((1.02, 1.05, 1.10), 0, "0"),
    "older control, medial temporal tau": ((1.35, 1.20, 1.25), 2, "I-II"),
    "MCI, limbic tau": ((1.70, 1.55, 1.40), 4, "III-IV"),
    "AD, neocortical tau": ((2.40, 2.60, 2.30), 6, "V-VI"),
}


@pytest.mark.parametrize("subject", sorted(KNOWN_STAGE))
def test_simulated_subjects_get_their_known_stage(subject: str) -> None:
    values, stage, label = KNOWN_STAGE[subject]
    result = staging.composite_stage(_composites(*values), MAASS)
    assert (result.stage, result.label, result.conforming) == (stage, label, True)


@pytest.mark.parametrize(
    ("values", "stage"),
    [
        ((1.13, 1.0, 1.0), 0),  # at the I/II threshold: not above it (Braak0 <= 1.13)
        ((1.13 + 1e-6, 1.0, 1.0), 2),
        ((1.5, 1.30, 1.0), 2),  # at the III/IV threshold
        ((1.5, 1.30 + 1e-6, 1.0), 4),
        ((1.5, 1.6, 1.87), 4),  # at the V/VI threshold
        ((1.5, 1.6, 1.87 + 1e-6), 6),
    ],
)
def test_each_threshold_boundary_is_strict(values: tuple, stage: int) -> None:
    result = staging.composite_stage(_composites(*values), MAASS)
    assert result.stage == stage and result.conforming


@pytest.mark.parametrize(
    ("values", "stage", "abnormal"),
    [
        ((1.0, 1.4, 1.0), 4, (False, True, False)),  # III/IV without I/II
        ((1.5, 1.2, 1.9), 6, (True, False, True)),  # V/VI with a normal III/IV
        ((1.0, 1.0, 2.0), 6, (False, False, True)),  # V/VI alone
    ],
)
def test_non_conforming_patterns_keep_the_furthest_stage_and_are_flagged(
    values: tuple, stage: int, abnormal: tuple
) -> None:
    result = staging.composite_stage(_composites(*values), MAASS)
    assert (result.stage, result.conforming, result.abnormal) == (stage, False, abnormal)


def test_a_missing_composite_leaves_the_stage_empty() -> None:
    result = staging.composite_stage(_composites(1.5, math.nan, 1.0), MAASS)
    assert result.stage is None and result.label is None and result.conforming is None
    assert result.abnormal == (True, None, False)


@pytest.mark.parametrize(
    ("tracer", "reference", "pvc", "applies", "note"),
    [
        ("flortaucipir", "InfCerebGrey", "gtm", True, ""),
        ("flortaucipir", "InfCerebGrey", "rbv", True, "derived on GTM"),
        ("flortaucipir", "InfCerebGrey", "none", False, "threshold set for uncorrected"),
        ("flortaucipir", "InfCerebGrey", None, False, "threshold set for uncorrected"),
        ("MK6240", "InfCerebGrey", "gtm", False, "tracer MK6240"),
        ("flortaucipir", "WholeCereb", "gtm", False, "not WholeCereb"),
    ],
)
def test_which_threshold_set_applies(tracer, reference, pvc, applies, note) -> None:
    chosen, why = staging.threshold_set_for(tracer, reference, pvc)
    assert (chosen is staging.MAASS2017_PVC) is applies
    assert note in why


def _braak_table(i_ii: float, iii_iv: float, v_vi: float) -> pd.DataFrame:
    regions = ["BraakI", "BraakII", *staging.COMPOSITES, "reference-InfCerebGrey"]
    return pd.DataFrame({"region": regions, "suvr_mean": [1.2, 1.3, i_ii, iii_iv, v_vi, 1.0]})


def test_stage_table_has_one_row_per_method_and_stages_only_pvc() -> None:
    tables = {"none": _braak_table(1.25, 1.2, 1.15), "gtm": _braak_table(1.5, 1.45, 1.3)}
    table = staging.stage_table(tables, "flortaucipir", "InfCerebGrey")
    assert list(table.columns) == staging.stage_table_columns()
    plain, gtm = table.set_index("method").loc[["SUVR", "SUVR-PVC-GTM"]].to_dict("records")
    assert pd.isna(plain["braak_stage"]) and pd.isna(plain["threshold_set"])
    assert plain["note"] == staging.NO_UNCORRECTED_SET and plain["BraakI_II_suvr"] == 1.25
    assert gtm["braak_stage"] == 4 and gtm["braak_stage_label"] == "III-IV"
    assert gtm["braak_conforming"] and gtm["threshold_set"] == "Maass2017_PVC"
    assert gtm["BraakV_VI_threshold"] == 1.87 and gtm["BraakV_VI_abnormal"] is False
    assert gtm["citation"] == staging.MAASS2017_PVC.citation and pd.isna(gtm["note"])


def test_stage_table_interface_writes_n_a_for_the_uncorrected_stage(tmp_path) -> None:
    from taupet_bids.interfaces.tables import BraakStageTable

    paths = []
    for name, values in {"plain": (1.3, 1.2, 1.1), "gtm": (1.6, 1.2, 1.9)}.items():
        paths.append(tmp_path / f"{name}.tsv")
        _braak_table(*values).to_csv(paths[-1], sep="\t", index=False)
    node = BraakStageTable(braak_tables=[str(p) for p in paths], methods=["none", "gtm"],
                           tracer="flortaucipir", reference_region="InfCerebGrey")  # fmt: skip
    out = node.run(cwd=str(tmp_path)).outputs.out_table
    assert Path(out).parent == tmp_path
    lines = open(out).read().splitlines()
    header = lines[0].split("\t")
    plain = dict(zip(header, lines[1].split("\t"), strict=True))
    gtm = dict(zip(header, lines[2].split("\t"), strict=True))
    assert plain["braak_stage"] == "n/a" and plain["threshold_set"] == "n/a"
    assert (gtm["braak_stage"], gtm["braak_conforming"]) == ("6", "False")


def test_stage_sidecar_names_the_rule_the_thresholds_and_the_empty_uncorrected_stage() -> None:
    meta = staging.stage_table_sidecar()
    assert set(meta["Columns"]) == set(staging.stage_table_columns())
    assert meta["ThresholdSets"]["Maass2017_PVC"]["Thresholds"]["BraakIII_IV"] == 1.30
    assert "strictly above" in meta["StagingRule"]
    assert meta["UncorrectedStage"] == staging.NO_UNCORRECTED_SET


def test_user_thresholds_stage_the_uncorrected_row() -> None:
    user = staging.user_threshold_set((1.2, 1.25, 1.4), "Example et al. 2020, Table 2", "X")
    tables = {"none": _braak_table(1.3, 1.3, 1.35), "gtm": _braak_table(1.5, 1.45, 1.3)}
    table = staging.stage_table(tables, "flortaucipir", "InfCerebGrey", user)
    plain, gtm = table.set_index("method").loc[["SUVR", "SUVR-PVC-GTM"]].to_dict("records")
    assert (plain["braak_stage"], plain["threshold_set"]) == (4, staging.USER_SET_KEY)
    assert plain["citation"] == "Example et al. 2020, Table 2"
    assert plain["note"] == staging.USER_SET_NOTE and plain["BraakV_VI_threshold"] == 1.4
    assert gtm["threshold_set"] == "Maass2017_PVC"  # PVC rows keep the published set
    meta = staging.stage_table_sidecar(user)
    assert meta["ThresholdSets"][staging.USER_SET_KEY]["Thresholds"]["BraakI_II"] == 1.2
    assert meta["UncorrectedStage"] == staging.USER_SET_NOTE


@pytest.mark.parametrize(
    ("thresholds", "citation", "problem"),
    [((1.2, 1.3), "x", "three positive"), ((1.2, -1.0, 1.4), "x", "three positive"),
     ((1.2, 1.3, float("nan")), "x", "three positive"), ((1.2, 1.3, 1.4), " ", "source")],
)  # fmt: skip
def test_user_thresholds_are_checked(thresholds, citation, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        staging.user_threshold_set(thresholds, citation, "InfCerebGrey")


def test_cli_braak_thresholds(tmp_path, capsys) -> None:
    from taupet_bids.cli.parser import parse_args

    base = [str(tmp_path), str(tmp_path / "out"), "participant"]
    config = parse_args([*base, "--braak-thresholds", "1.2", "1.3", "1.5",
                         "--braak-thresholds-source", "Example 2020"])  # fmt: skip
    assert config.braak_thresholds == (1.2, 1.3, 1.5)
    with pytest.raises(SystemExit):
        parse_args([*base, "--braak-thresholds", "1.2", "1.3", "1.5"])
    assert "source" in capsys.readouterr().err


def test_stage_table_interface_takes_user_thresholds(tmp_path) -> None:
    from taupet_bids.interfaces.tables import BraakStageTable

    path = tmp_path / "plain.tsv"
    _braak_table(1.3, 1.1, 1.0).to_csv(path, sep="\t", index=False)
    node = BraakStageTable(braak_tables=[str(path)], methods=["none"], tracer="flortaucipir",
                           reference_region="InfCerebGrey", uncorrected_thresholds=[1.2, 1.25, 1.4],
                           uncorrected_citation="Example 2020")  # fmt: skip
    table = pd.read_csv(node.run(cwd=str(tmp_path)).outputs.out_table, sep="\t")
    assert table.loc[0, "braak_stage"] == 2 and table.loc[0, "citation"] == "Example 2020"
