"""The simulator's FDG, TSPO, atrophy and clinical models on a cohort drawn without images.

The label-level models are the ones the images are made from, so a few hundred simulated
participants take a second and the couplings can be measured with some precision.
"""

from __future__ import annotations

import numpy as np
import pytest

from taupet_bids import atlases
from taupet_bids.simulate import fdg, gm_atrophy, tspo, uptake
from taupet_bids.simulate.clinical import CLINICAL_STREAM, draw_clinical, stream
from taupet_bids.simulate.cohort import FDG_STREAM, TSPO_STREAM
from taupet_bids.simulate.population import draw_cohort
from taupet_bids.simulate.uptake import TauState


def _mean(values: dict[int, float], regions: list[str]) -> float:
    return float(np.mean([values[i] for i in atlases.dk_indices(regions)]))


TEMPORAL = ["inferiortemporal", "middletemporal"]
PARIETAL = ["inferiorparietal", "supramarginal", "superiorparietal", "precuneus"]


@pytest.fixture(scope="module")
def cohort() -> dict[str, np.ndarray]:
    """300 participants: tau, FDG, TSPO and atrophy by region, with clinical variables."""
    rows: dict[str, list] = {key: [] for key in (
        "stage", "amyloid", "mmse", "genotype", "tau_t", "fdg_t", "fdg_p", "change_t",
        "change_p", "change_motor", "change_pcc", "tspo_a", "tspo_b", "tspo_gain_p",
        "tspo_gain_cereb", "loss_t", "loss_motor",
    )}  # fmt: skip
    for subject in draw_cohort(300, seed=4):
        rng = np.random.default_rng(subject.seed)
        profile = uptake.random_profile(rng, realistic=True)
        state = subject.baseline.tau
        tau = uptake.label_suvr(profile, state)
        fdg_profile = fdg.random_profile(stream(subject.seed, FDG_STREAM), subject.clinical)
        change = fdg.relative_change(fdg_profile, profile, state)
        values = fdg.label_values(fdg_profile, profile, state)
        tspo_rng = stream(subject.seed, TSPO_STREAM)
        tspo_profile = tspo.random_profile(tspo_rng, subject.clinical)
        scans = [tspo.label_values(tspo_profile, profile, state, tspo.scan_variation(tspo_rng))
                 for _ in range(2)]  # fmt: skip
        healthy = tspo.label_values(tspo_profile, profile, TauState(0, 0.0))
        plain = tspo.label_values(tspo_profile, profile, state)
        traits = gm_atrophy.random_traits(stream(subject.seed, gm_atrophy.ATROPHY_STREAM))
        loss = gm_atrophy.regional_loss(traits, profile, state, subject.baseline.age)
        row = {
            "stage": state.stage,
            "amyloid": subject.clinical.amyloid_positive,
            "mmse": subject.clinical.mmse[0],
            "genotype": subject.clinical.tspo_genotype,
            "tau_t": _mean(tau, TEMPORAL),
            "fdg_t": _mean(values, TEMPORAL),
            "fdg_p": _mean(values, PARIETAL),
            "change_t": _mean(change, TEMPORAL),
            "change_p": _mean(change, PARIETAL),
            "change_motor": _mean(change, ["precentral", "postcentral"]),
            "change_pcc": _mean(change, ["posteriorcingulate"]),
            "tspo_a": _mean(scans[0], TEMPORAL + PARIETAL),
            "tspo_b": _mean(scans[1], TEMPORAL + PARIETAL),
            "tspo_gain_p": _mean(plain, PARIETAL) / _mean(healthy, PARIETAL) - 1,
            "tspo_gain_cereb": _mean(plain, ["cerebellum-cortex", "thalamus"])
            / _mean(healthy, ["cerebellum-cortex", "thalamus"])
            - 1,
            "loss_t": _mean(loss, ["entorhinal", "inferiortemporal"]),
            "loss_motor": _mean(loss, ["precentral"]),
        }
        for key, value in row.items():
            rows[key].append(value)
    return {key: np.array(value) for key, value in rows.items()}


def test_fdg_falls_with_temporal_tau_across_subjects(cohort):
    r = np.corrcoef(cohort["tau_t"], cohort["fdg_t"])[0, 1]
    assert r < -0.2
    positive = cohort["amyloid"]
    r_positive = np.corrcoef(cohort["tau_t"][positive], cohort["fdg_t"][positive])[0, 1]
    r_negative = np.corrcoef(cohort["tau_t"][~positive], cohort["fdg_t"][~positive])[0, 1]
    assert r_positive < r_negative  # coupling is stronger with amyloid


def test_typical_ad_loses_15_to_25_percent_temporoparietal_and_spares_motor(cohort):
    ad = (cohort["stage"] == 6) & cohort["amyloid"]
    assert ad.sum() >= 10
    temporoparietal = (cohort["change_t"][ad] + cohort["change_p"][ad]) / 2
    assert -0.25 <= np.median(temporoparietal) <= -0.12
    assert np.abs(np.median(cohort["change_motor"][ad])) < 0.02


def test_posterior_cingulate_falls_only_with_amyloid_and_neocortical_tau(cohort):
    negative = ~cohort["amyloid"]
    early = cohort["stage"] <= 3
    # Without amyloid or before neocortical tau: hardly any posterior cingulate loss.
    assert np.median(cohort["change_pcc"][negative]) > -0.01
    assert np.median(cohort["change_pcc"][early & cohort["amyloid"]]) > -0.03
    late = (cohort["stage"] >= 5) & cohort["amyloid"]
    assert np.median(cohort["change_pcc"][late]) < -0.08


def test_tau_at_low_amyloid_can_raise_metabolism(cohort):
    negative = ~cohort["amyloid"] & (cohort["stage"] >= 1)
    assert (cohort["change_t"][negative] > 0.01).any()
    assert cohort["change_t"][negative].max() <= fdg.MAX_GAIN


def test_fdg_mismatch_subgroup_exists():
    kinds = [fdg.random_profile(np.random.default_rng(i), _clinical(True)).mismatch
             for i in range(200)]  # fmt: skip
    share = 1 - kinds.count("none") / len(kinds)
    assert 0.05 < share < 0.3
    assert {"resilient", "non_ad_loss"} <= set(kinds)


def _clinical(positive: bool, genotype: str = "HAB"):
    clinical = draw_clinical(np.random.default_rng(0), (6,))
    return type(clinical)(positive, 60.0 if positive else 0.0, clinical.mmse, genotype)


def test_tspo_mab_below_hab_and_lab_near_non_binding(cohort):
    level = {g: cohort["tspo_a"][cohort["genotype"] == g].mean() for g in ("HAB", "MAB", "LAB")}
    assert 0.6 < level["MAB"] / level["HAB"] < 0.8
    assert level["LAB"] / level["HAB"] < 0.5


def test_tspo_test_retest_variability_is_16_to_18_percent(cohort):
    a, b = cohort["tspo_a"], cohort["tspo_b"]
    variability = np.mean(np.abs(a - b) / ((a + b) / 2))
    assert 0.14 < variability < 0.20


def test_tspo_rises_in_ad_parietal_cortex_not_in_cerebellum_or_thalamus(cohort):
    ad = (cohort["stage"] == 6) & cohort["amyloid"] & (cohort["genotype"] == "HAB")
    assert np.median(cohort["tspo_gain_p"][ad]) > 0.05
    assert np.abs(cohort["tspo_gain_cereb"]).max() < 1e-9


def test_atrophy_follows_tau_only_partly(cohort):
    r = np.corrcoef(cohort["tau_t"], cohort["loss_t"])[0, 1]
    assert 0.4 < r < 0.95  # informative, not a copy of tau
    late = cohort["stage"] >= 5
    assert np.median(cohort["loss_t"][late]) > 2 * np.median(cohort["loss_motor"][late])


def test_clinical_variables_follow_the_stage(cohort):
    stage, mmse, amyloid = cohort["stage"], cohort["mmse"], cohort["amyloid"]
    assert mmse.min() >= 0 and mmse.max() <= 30
    assert mmse[stage == 6].mean() < mmse[stage == 0].mean() - 4
    assert 0.05 < amyloid[stage == 0].mean() < 0.4  # some CN are amyloid positive
    assert amyloid[stage >= 5].mean() > 0.85


def test_clinical_stream_is_the_subjects_own():
    subject = draw_cohort(3, seed=9)[1]
    again = draw_clinical(
        stream(subject.seed, CLINICAL_STREAM), tuple(v.tau.stage for v in subject.visits)
    )
    assert again == subject.clinical
