"""The BIDS App without MRI: --mr-less auto/always with the network and the ANTs baseline.

One simulated cohort of two subjects; sub-002 loses its T1w. ``--mr-less auto`` must process
sub-001 with its T1w and sub-002 without; ``--mr-less always --mr-less-method ants`` ignores the
T1w of sub-001. Every MR-less output must be named like the MR-based ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from taupet_bids.simulate import load_truth, truth_value

TRACER = "18FAV1451"
TOLERANCE_PCT = 3.0


def taupet_bids(*args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, templateflow_home):
    root = tmp_path_factory.mktemp("mrless_cli")
    bids = root / "bids"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    # the template anatomy: the shipped network was trained on it (see test_mrless.py)
    subprocess.run([simulate, bids, "--n-subjects", "2", "--seed", "12", "--anatomy", "template"],
                   check=True)  # fmt: skip
    shutil.rmtree(bids / "sub-002" / "anat")
    # template masks: this phantom paints its uptake on the template's labels, whatever its T1w
    # shows, so a PVC label image drawn from its T1w would not match its truth (docs/pvc.md)
    auto = taupet_bids(bids, root / "auto", "participant", "-w", root / "work_auto",
                       "--skip-bids-validation", "--pvc", "gtm", "--pvc-fwhm", "7",
                       "--regional-mask", "template")  # fmt: skip
    ants = taupet_bids(bids, root / "ants", "participant", "-w", root / "work_ants",
                       "--skip-bids-validation", "--participant-label", "001",
                       "--mr-less", "always", "--mr-less-method", "ants",
                       "--braak-thresholds", "1.2", "1.3", "1.4",
                       "--braak-thresholds-source", "test values, not published")  # fmt: skip
    group = taupet_bids(bids, root / "auto", "group")
    return {"bids": bids, "root": root, "auto": auto, "ants": ants, "group": group}


def _pet_files(out: Path, sub: str) -> set[str]:
    folder = out / f"sub-{sub}" / "pet"
    return {p.name.replace(f"sub-{sub}_", "") for p in folder.iterdir()}


def _sidecar(out: Path, sub: str) -> dict:
    name = f"sub-{sub}_trc-{TRACER}_space-MNI152NLin6Asym_res-2_desc-suvr_pet.json"
    return json.loads((out / f"sub-{sub}" / "pet" / name).read_text())


def _metatemporal(out: Path, sub: str, pvc: str = "", region: str = "metatemporal") -> float:
    name = (
        f"sub-{sub}_trc-{TRACER}_space-MNI152NLin6Asym_seg-MetaTemporal_label-InfCerebGrey"
        f"{pvc}_suvr.tsv"
    )
    table = pd.read_csv(out / f"sub-{sub}" / "pet" / name, sep="\t").set_index("region")
    return float(table.loc[region, "suvr_mean"])


def test_auto_runs_mr_less_only_without_t1w(runs):
    assert runs["auto"].returncode == 0, runs["auto"].stderr[-3000:]
    out = runs["root"] / "auto"
    assert _sidecar(out, "001")["SpatialNormalisation"]["Method"].startswith("MR-based")
    method = _sidecar(out, "002")["SpatialNormalisation"]
    assert method["Method"].startswith("MR-less, network"), method
    assert not (out / "sub-002" / "anat").exists()


def test_mr_less_outputs_are_named_like_mr_based_ones(runs):
    out = runs["root"] / "auto"
    mr_based, mr_less = _pet_files(out, "001"), _pet_files(out, "002")
    transforms = {"trc-18FAV1451_from-pet_to-T1w_mode-image_xfm.mat",
                  "trc-18FAV1451_from-pet_to-MNI152NLin6Asym_mode-image_xfm.nii.gz",
                  "trc-18FAV1451_from-pet_to-MNI152NLin6Asym_mode-image_xfm.json"}  # fmt: skip
    assert mr_based - transforms == mr_less - transforms
    assert "trc-18FAV1451_qc.json" in mr_less, "every scan has its QC record"
    assert "trc-18FAV1451_from-pet_to-MNI152NLin6Asym_mode-image_xfm.nii.gz" in mr_less


@pytest.mark.parametrize(("run", "sub"), [("auto", "002"), ("ants", "001")])
def test_mr_less_suvr_matches_the_blurred_truth(runs, run, sub):
    assert runs[run].returncode == 0, runs[run].stderr[-3000:]
    truth = truth_value(
        load_truth(runs["bids"], sub, kind="blurred"), "MetaTemporal", "metatemporal"
    )
    value = _metatemporal(runs["root"] / run, sub)
    assert abs(value - truth) / truth * 100 <= TOLERANCE_PCT, (value, truth)
    assert not _sidecar(runs["root"] / run, sub)["SpatialNormalisation"]["Flags"]


def test_ants_baseline_ignores_the_t1w_and_keeps_its_transforms(runs):
    out = runs["root"] / "ants"
    assert _sidecar(out, "001")["SpatialNormalisation"]["Method"].startswith("MR-less, ANTs")
    files = _pet_files(out, "001")
    assert "trc-18FAV1451_from-pet_to-MNI152NLin6Asym_mode-image_xfm.mat" in files
    assert not (out / "sub-001" / "anat").exists()


def test_mr_less_outputs_pass_the_bids_validator(runs):
    validator = Path(sys.executable).with_name("bids-validator-deno")
    for run in ("auto", "ants"):
        done = subprocess.run(
            [validator, "--json", runs["root"] / run], capture_output=True, text=True, timeout=300
        )
        issues = json.loads(done.stdout)["issues"]["issues"]
        errors = [issue for issue in issues if issue["severity"] == "error"]
        assert not errors, (run, errors[:3])


def test_report_names_the_mr_less_method(runs):
    report = (runs["root"] / "auto" / "sub-002.html").read_text()
    assert "MR-less, network" in report and "PET-to-template normalisation" in report


def test_group_qc_table_reports_the_normalisation_of_each_scan(runs):
    assert runs["group"].returncode == 0, runs["group"].stderr[-3000:]
    qc = pd.read_csv(runs["root"] / "auto" / "group" / "qc.tsv", sep="\t").set_index(
        "participant_id"
    )
    assert qc.index.is_unique, "one QC row per scan, whatever the number of PVC methods"
    assert qc.loc["sub-001", "normalisation_method"].startswith("MR-based")
    assert qc.loc["sub-002", "normalisation_method"].startswith("MR-less, network")
    assert qc.loc["sub-002", "template_correlation"] >= 0.8
    # An MR-less scan has no T1w registration to score, and must not be flagged for it.
    assert "T1w" not in str(qc.loc["sub-002", "flags"])


@pytest.mark.parametrize(
    ("sub", "space", "tolerance"), [("001", "pet", 0.06), ("002", "template", 0.10)]
)
def test_pvc_runs_in_pet_space_with_mri_and_in_template_space_without(runs, sub, space, tolerance):
    """MR-based scans are corrected on their PET grid, MR-less ones on the template grid.

    The template-space image was resampled and the head scaled, so its PSF is wider than the
    7 mm given and GTM under-corrects more there (docs/benchmarks.md): a wider tolerance."""
    from taupet_bids.workflows.outputs import PVC_SPACE  # after the TemplateFlow fixture

    out = runs["root"] / "auto"
    sharp = truth_value(load_truth(runs["bids"], sub, kind="sharp"), "MetaTemporal", "metatemporal")
    gtm = _metatemporal(out, sub, "_pvc-GTM")
    assert abs(gtm - sharp) < abs(_metatemporal(out, sub) - sharp), (gtm, sharp)
    assert abs(gtm / sharp - 1) < tolerance, (gtm, sharp)
    assert _metatemporal(out, sub, "_pvc-GTM", "reference-InfCerebGrey") == pytest.approx(1.0)
    name = f"sub-{sub}_trc-{TRACER}_space-MNI152NLin6Asym_seg-MetaTemporal_label-InfCerebGrey"
    sidecar = json.loads((out / f"sub-{sub}" / "pet" / f"{name}_pvc-GTM_suvr.json").read_text())
    assert sidecar["PVCSpace"] == PVC_SPACE[space]


def test_user_braak_thresholds_reach_the_stage_table(runs):
    """--braak-thresholds stages the uncorrected row, citing the source the user gave."""
    from taupet_bids import staging

    folder = runs["root"] / "ants" / "sub-001" / "pet"
    name = f"sub-001_trc-{TRACER}_space-MNI152NLin6Asym_seg-Braak_label-InfCerebGrey_braakstage"
    table = pd.read_csv(folder / f"{name}.tsv", sep="\t", na_values="n/a").set_index("method")
    plain = table.loc["SUVR"]
    assert plain.threshold_set == staging.USER_SET_KEY
    assert plain.citation == "test values, not published"
    braak = (
        pd.read_csv(folder / name.replace("_braakstage", "_suvr.tsv"), sep="\t")
        .set_index("region")
        .suvr_mean
    )
    composites = {c: braak[c] for c in staging.COMPOSITES}
    thresholds = dict(zip(staging.COMPOSITES, (1.2, 1.3, 1.4), strict=True))
    expected = staging.composite_stage(composites, thresholds)
    assert plain.braak_stage == expected.stage
    sidecar = json.loads((folder / f"{name}.json").read_text())
    assert sidecar["ThresholdSets"][staging.USER_SET_KEY]["Thresholds"]["BraakV_VI"] == 1.4
