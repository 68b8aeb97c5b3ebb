"""``--classify``: the option's checks, the plan, and the graph with and without the classifier.

The bundle is the tiny network with its initial weights (tests.classification_cohort): nothing
here depends on what it predicts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from taupet_bids.cli.parser import parse_args
from taupet_bids.models.bundle import WEIGHTS
from taupet_bids.plan import plan_scan
from tests.classification_cohort import write_untrained_bundle
from tests.test_plan import _checked, _config

SCAN = "scan_sub_01_trc_FTP"


@pytest.fixture(autouse=True)
def _templateflow(templateflow_home):
    """Workflows import TemplateFlow: its home must be set before the first import."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_untrained_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def _parse(tmp_path: Path, *options: str):
    return parse_args([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", *options])


def _refused(tmp_path: Path, capsys, folder: Path) -> str:
    with pytest.raises(SystemExit) as stop:
        _parse(tmp_path, "--classify", str(folder))
    assert stop.value.code == 2  # argparse's code, like every other bad option
    return capsys.readouterr().err


def test_a_missing_folder_is_refused_by_name(tmp_path, capsys):
    err = _refused(tmp_path, capsys, tmp_path / "no-such-bundle")
    assert "--classify" in err and str(tmp_path / "no-such-bundle") in err


def test_a_folder_without_a_bundle_is_refused_by_name(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _refused(tmp_path, capsys, empty)
    assert str(empty) in err and "not a classifier bundle" in err and "model.pt" in err


def test_weights_that_do_not_match_the_checksum_are_refused(tmp_path, capsys, bundle):
    copy = tmp_path / "damaged"
    shutil.copytree(bundle, copy)
    with open(copy / WEIGHTS, "ab") as handle:
        handle.write(b"\0")
    err = _refused(tmp_path, capsys, copy)
    assert str(copy) in err and "sha256" in err


def test_metadata_without_a_threshold_is_refused(tmp_path, capsys, bundle):
    copy = tmp_path / "no-threshold"
    shutil.copytree(bundle, copy)
    metadata = copy / "configs" / "metadata.json"
    record = json.loads(metadata.read_text())
    del record["taupet_bids"]["threshold"]
    metadata.write_text(json.dumps(record))
    err = _refused(tmp_path, capsys, copy)
    assert str(copy) in err and "threshold" in err


def test_a_good_bundle_reaches_the_plan(tmp_path, bundle):
    config = _parse(tmp_path, "--classify", str(bundle))
    assert config.classifier_bundle == bundle.absolute()
    assert _parse(tmp_path).classifier_bundle is None
    plan = plan_scan(_config(tmp_path, classifier_bundle=bundle), _checked(tmp_path))
    assert plan.classify and plan.classifier_bundle == bundle


def _node_names(tmp_path: Path, **options) -> set[str]:
    from taupet_bids.workflows.base import init_participant_wf

    plan = plan_scan(_config(tmp_path, **options), _checked(tmp_path))
    return set(init_participant_wf([plan], tmp_path / "work").list_node_names())


def test_the_graph_has_the_classifier_only_when_asked(tmp_path, bundle):
    asked = _node_names(tmp_path / "a", classifier_bundle=bundle)
    for node in ("classification_wf.classify_ad_vs_cn", "outputs_wf.ds_classification",
                 "outputs_wf.ds_occlusion_map", "outputs_wf.ds_occlusion_regions",
                 "reportlets_wf.figure_occlusion", "outputs_wf.ds_figure_occlusion",
                 "outputs_wf.ds_attribution_map", "outputs_wf.ds_attribution_regions",
                 "reportlets_wf.figure_attribution"):  # fmt: skip
        assert f"{SCAN}.{node}" in asked
    plain = _node_names(tmp_path / "b")
    assert not [
        name for name in plain if "classif" in name or "occlusion" in name or "attribution" in name
    ]
    assert plain < asked


def test_the_sinks_name_the_outputs_and_the_model(tmp_path, bundle):
    """The sinks' file names (docs/outputs.md) and the model in the map's sidecar."""
    from taupet_bids.classification.bundle import read_card
    from taupet_bids.workflows.outputs import _classification_sinks

    plan = plan_scan(_config(tmp_path, classifier_bundle=bundle), _checked(tmp_path))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    image = inputs / "map.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), np.eye(4)), image)
    (inputs / "prediction.json").write_text("{}")
    (inputs / "regions.tsv").write_text("atlas\tregion\n")
    sources = {"Sources": ["bids:raw:sub-01/pet/sub-01_trc-FTP_pet.nii.gz"]}
    sinks = _classification_sinks(plan, sources)
    files = {"classification": "prediction.json", "occlusion_map": "map.nii.gz",
             "occlusion_regions": "regions.tsv", "attribution_map": "map.nii.gz",
             "attribution_regions": "regions.tsv"}  # fmt: skip
    written = {}
    for key, name in files.items():
        sinks[key].base_dir = str(tmp_path / "nodes")
        sinks[key].inputs.in_file = str(inputs / name)
        sinks[key].inputs.source_file = str(plan.pet)
        written[key] = Path(sinks[key].run().outputs.out_file).name
    space = "sub-01_trc-FTP_space-MNI152NLin6Asym_res-2"
    assert written == {
        "classification": "sub-01_trc-FTP_desc-ADvsCN_classification.json",
        "occlusion_map": f"{space}_desc-occlusion_map.nii.gz",
        "occlusion_regions": f"{space}_desc-occlusion_regions.tsv",
        "attribution_map": f"{space}_desc-attribution_map.nii.gz",
        "attribution_regions": f"{space}_desc-attribution_regions.tsv",
    }
    folder = plan.staging_dir / "sub-01" / "pet"
    sidecar = json.loads(
        (folder / written["occlusion_map"].replace(".nii.gz", ".json")).read_text()
    )
    assert sidecar["ModelSHA256"] == read_card(bundle).sha256 and sidecar["Threshold"] == 0.5
    attribution = json.loads(
        (folder / written["attribution_map"].replace(".nii.gz", ".json")).read_text()
    )
    assert attribution["Units"] == "log-odds"
    assert "integrated-gradients" in attribution["Description"]
    assert json.loads((folder / written["classification"]).read_text()) == {}, "copied as is"


def test_the_methods_text_describes_the_classifier_only_when_run(tmp_path, bundle):
    from taupet_bids.boilerplate import methods_text
    from taupet_bids.classification.bundle import read_card

    plain = methods_text(_config(tmp_path))
    text = " ".join(methods_text(_config(tmp_path, classifier_bundle=bundle)).split())
    assert "Occlusion" not in plain and "Wen J" not in plain
    card = read_card(bundle)
    assert f"version {card.version}, weights sha256 {card.sha256}" in text
    assert "at least 0.5" in text and "each 12 mm cube" in text and "SUVR 1.0" in text
    assert "[conv5fc3] Wen J" in text and "[occlusion] Zeiler MD" in text


def test_the_subject_report_shows_prediction_top_regions_and_map(tmp_path, templateflow_home):
    from taupet_bids import naming, templates
    from taupet_bids.core.figures import figure_name, occlusion_montage
    from taupet_bids.reports.subject import classification_parts

    out, stem = tmp_path / "out", "sub-01_trc-FTP"
    assert classification_parts(out, stem) == [], "nothing for a scan that was not classified"
    path = naming.classification_json(out, stem)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "ADProbability": 0.8123, "Label": "AD", "Threshold": 0.5, "ModelName": "tiny",
        "ModelVersion": "0.1", "ModelSHA256": "cd" * 32, "OcclusionMaskMM": 12,
        "OccluderSUVR": 1.0,
    }))  # fmt: skip
    rows = [("DK", f"region{i}", 0.1 - i / 100, 0.2, 50, i + 1) for i in range(10)]
    rows += [("Braak", "BraakI", 0.05, 0.1, 40, 1)]
    columns = ["atlas", "region", "sensitivity_mean", "sensitivity_max", "n_voxels", "rank"]
    pd.DataFrame(rows, columns=columns).to_csv(
        naming.classifier_map_regions(out, stem), sep="\t", index=False
    )
    template = nib.load(templates.t1w_path())
    values = np.zeros(template.shape, np.float32)
    values[30:40, 40:50, 30:40] = 0.2
    occlusion = tmp_path / "occlusion.nii.gz"
    nib.save(nib.Nifti1Image(values, template.affine), occlusion)
    figure = naming.figures_folder(out, stem) / figure_name(stem, "occlusion")
    figure.parent.mkdir(parents=True)
    occlusion_montage(occlusion, templates.t1w_path(), figure)
    html = "".join(classification_parts(out, stem))
    assert "0.812" in html and "AD (AD when P(AD) &gt;= 0.5)" in html and "cd" * 32 in html
    assert "region7" in html and "region8" not in html, "the top 8 DK regions only"
    assert "BraakI" in html and 'src="data:image/png;base64,' in html


def test_the_written_probability_and_label_agree_at_the_threshold(tmp_path):
    """Rounding to the written decimals never gives a label the group level would refuse."""
    from taupet_bids import group
    from taupet_bids.classification.inference import Prediction

    near = Prediction(0.4999996, 0.5)
    assert (near.reported, near.label) == (0.5, "AD")
    assert Prediction(0.4999994, 0.5).label == "CN"
    path = tmp_path / f"sub-01_trc-FTP{group.CLASSIFICATION_SUFFIX}"
    path.write_text(json.dumps({"ADProbability": near.reported, "Label": near.label,
                                "Threshold": 0.5}))  # fmt: skip
    assert group.read_classification(path)["label"] == "AD"
