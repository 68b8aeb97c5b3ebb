"""The per-subject HTML report, ``OUTPUT_DIR/sub-<label>.html``, built from the derivatives.

One page per participant (fMRIPrep's layout), one section per PET scan: summary, QC flags,
motion, PET-to-T1w and T1w-to-template overlays, regions on the SUVR image, an SUVR montage,
the regional tables, and the methods text with citations. Everything comes from the output
folder: the figures and QC record are drawn by the participant graph and committed with the other
derivatives, so the report only assembles them and can be rebuilt without the work folder.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from taupet_bids import naming, staging, tracers
from taupet_bids.boilerplate import package_versions
from taupet_bids.core.figures import FIGURES, figure_name
from taupet_bids.naming import scan_stem
from taupet_bids.reports import qc
from taupet_bids.reports.html import definitions, esc, figure, page, table, warnings

LOG = logging.getLogger("taupet_bids")


def subject_scans(output_dir: Path, subject: str) -> list[str]:
    """Stems of the subject's scans that have an SUVR image (i.e. finished)."""
    found = (output_dir / subject).glob("**/pet/*_desc-suvr_pet.nii.gz")
    return sorted({scan_stem(path.name) for path in found})


def _figure(output_dir: Path, stem: str, key: str) -> str:
    """One of the figures the scan's graph committed, embedded in the page."""
    _, alt = FIGURES[key]
    return figure(naming.figures_folder(output_dir, stem) / figure_name(stem, key), alt)


def _tables(pet_dir: Path, stem: str, desc: str | None = None) -> dict[str, pd.DataFrame]:
    """The scan's uncorrected regional tables by atlas: the measured ones, or with ``desc``
    (``harmonized``) the ones ``--harmonize`` wrote beside them."""
    tables = {}
    for path in sorted(pet_dir.glob(f"{stem}_space-*_seg-*_suvr.tsv")):
        found = naming.entities(path.name)
        if naming.scan_stem(path.name) == stem and "pvc" not in found and found.get("desc") == desc:
            tables[found["seg"]] = pd.read_csv(path, sep="\t", na_values="n/a")
    return tables


def _summary(stem: str, meta: dict, tables: dict[str, pd.DataFrame]) -> tuple[dict, list[str]]:
    """The summary list and the subject-level positivity note."""
    tracer = tracers.identify_tracer(meta.get("TracerName"), naming.entities(stem).get("trc"))
    cut = staging.cutpoint_for(tracer.name if tracer else None)
    meta_table = tables.get("MetaTemporal")
    value = (
        float(meta_table.set_index("region").loc["metatemporal", "suvr_mean"])
        if meta_table is not None else float("nan")
    )  # fmt: skip
    positive = staging.is_positive(value, cut)
    versions = ", ".join(f"{name} {ver}" for name, ver in package_versions().items())
    window = meta.get("TimeWindow", ["?", "?"])
    summary = {
        "scan": stem,
        "tracer": f"{meta.get('TracerName', 'n/a')} ({tracer.name if tracer else 'unknown'})",
        "time window": f"{window[0]}-{window[1]} min post-injection",
        "reference region": meta.get("ReferenceRegion", "n/a"),
        "method": "SUVR in MNI152NLin6Asym 2 mm, no partial-volume correction",
        "meta-temporal SUVR": f"{value:.3f}",
        "tau positivity": "n/a (no cut-point for this tracer)" if positive is None else
        f"{'positive' if positive else 'negative'} (cut-point {cut.value:g}; {cut.source})",
        "versions": versions,
    }  # fmt: skip
    return summary, []


def scan_section(output_dir: Path, stem: str) -> str:
    """All figures and tables of one scan, as an HTML section."""
    pet_dir = naming.pet_folder(output_dir, stem)
    suvr = naming.suvr_image(output_dir, stem)
    meta = json.loads(naming.sidecar(suvr).read_text())
    tables = _tables(pet_dir, stem)
    summary, _ = _summary(stem, meta, tables)
    metrics = qc.scan_metrics(output_dir, stem)
    flags = metrics["flags"]
    parts = [
        f'<section id="{esc(stem)}"><h2>{esc(stem)}</h2>',
        "<h3>Summary</h3>", definitions(summary),
        "<h3>Warnings (QC flags)</h3>", warnings(flags),
        "<h3>Motion</h3>", _figure(output_dir, stem, "motion"),
        *_registration_figures(output_dir, stem, metrics),
        "<h3>Reference region and ROIs on the SUVR image</h3>",
        "<p>Blue: reference region; green: meta-temporal ROI; magenta: Braak I (entorhinal).</p>",
        _figure(output_dir, stem, "regions"),
        "<h3>SUVR montage</h3>", _figure(output_dir, stem, "montage"),
        "<h3>Regional SUVR</h3>",
    ]  # fmt: skip
    for atlas in ("MetaTemporal", "Braak"):
        if atlas in tables:
            parts += [f"<h4>{atlas}</h4>", table(tables[atlas])]
    if "DK" in tables:
        parts.append(f"<details><summary>Desikan-Killiany</summary>{table(tables['DK'])}</details>")
    for stage_file in sorted(pet_dir.glob(f"{stem}_space-*_braakstage.tsv")):
        stages = pd.read_csv(stage_file, sep="\t", na_values="n/a")
        shown = [c for c in ("method", "braak_stage_label", "braak_conforming", "threshold_set",
                             "note") if c in stages.columns]  # fmt: skip
        parts += ["<h4>Braak stage (published thresholds)</h4>", table(stages[shown])]
    parts += classification_parts(output_dir, stem)
    parts += harmonization_parts(output_dir, stem)
    parts.append("</section>")
    return "".join(parts)


#: Rows of the occlusion and attribution summaries shown per atlas (the TSVs have them all).
TOP_REGIONS = {"DK": 8, "Braak": 6}


def classification_parts(output_dir: Path, stem: str) -> list[str]:
    """``--classify``: P(AD), the label, the model, the regions that raised P(AD) most by each
    map, and the maps; nothing for a scan that was not classified."""
    path = naming.classification_json(output_dir, stem)
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    summary = {
        "P(AD)": f"{record['ADProbability']:.3f}",
        "label": f"{record['Label']} (AD when P(AD) >= {record['Threshold']:g})",
        "model": f"{record.get('ModelName')} {record.get('ModelVersion')}",
        "weights sha256": record.get("ModelSHA256") or "n/a",
        "occluder": f"{record.get('OcclusionMaskMM')} mm cube at SUVR {record.get('OccluderSUVR')}",
    }
    if "AttributionSteps" in record:
        summary["attribution"] = (
            "integrated gradients of the AD log-odds from SUVR "
            f"{record['AttributionBaselineSUVR']} ({record['AttributionSteps']} steps; the map "
            f"adds up to {record['AttributionLogOddsChange']:+.2f}, off by "
            f"{record['AttributionCompletenessError']:+.2f})"
        )
    parts = [
        "<h3>AD vs CN classification</h3>",
        "<p>From the classifier bundle given with --classify (research use; what it was "
        "trained on is in its model card). It was trained on AD and CN scans only.</p>",
        definitions(summary),
    ]
    for desc in ("attribution", "occlusion"):
        regions_file = naming.classifier_map_regions(output_dir, stem, desc)
        if not regions_file.exists():
            continue
        regions = pd.read_csv(regions_file, sep="\t", na_values="n/a")
        for atlas, count in TOP_REGIONS.items():
            rows = regions[regions["atlas"] == atlas].sort_values("rank").head(count)
            parts += [f"<h4>Regions that raised P(AD) most, by {desc} ({atlas})</h4>", table(rows)]
        parts.append(_figure(output_dir, stem, desc))
    return parts


def harmonization_parts(output_dir: Path, stem: str) -> list[str]:
    """``--harmonize``: why the scan was harmonised, by which model, the measured and harmonised
    meta-temporal SUVR, and the correction map; nothing for a scan that was not harmonised."""
    pet_dir = naming.pet_folder(output_dir, stem)
    images = sorted(pet_dir.glob(f"{stem}_space-*_desc-harmonized_pet.nii.gz"))
    if not images:
        return []
    meta = json.loads(naming.sidecar(images[0]).read_text())
    summary = {
        "why": meta.get("HarmonizationReason") or "n/a",
        "model": f"{meta.get('ModelName')} {meta.get('ModelVersion')}",
        "weights sha256": meta.get("ModelSHA256") or "n/a",
        "anatomy": meta.get("HarmonizationAnatomyDescription") or "n/a",
        "correction in the brain (%)": f"mean {meta.get('CorrectionMeanPercent')}, range "
        f"{meta.get('CorrectionMinPercent')} to {meta.get('CorrectionMaxPercent')}",
    }
    if meta.get("HarmonizationAnatomyFallback"):
        summary["anatomy fallback"] = meta["HarmonizationAnatomyFallback"]
    parts = [
        "<h3>PET-MR to PET-CT harmonisation</h3>",
        "<p>A harmonised SUVR image and tables (desc-harmonized) were written beside the "
        "measured ones, which are unchanged (research use; the model card says what the "
        "harmoniser was trained on).</p>",
        definitions(summary),
    ]
    measured, harmonized = _tables(pet_dir, stem), _tables(pet_dir, stem, "harmonized")
    if "MetaTemporal" in measured and "MetaTemporal" in harmonized:
        rows = pd.DataFrame({
            "region": measured["MetaTemporal"]["region"],
            "measured SUVR": measured["MetaTemporal"]["suvr_mean"],
            "harmonised SUVR": harmonized["MetaTemporal"]["suvr_mean"],
        })  # fmt: skip
        parts += ["<h4>Meta-temporal SUVR</h4>", table(rows)]
    parts.append(_figure(output_dir, stem, "harmonization"))
    return parts


def _margin_text(metrics: dict) -> str:
    """How far the reference region lies from the edge of the field of view, in words."""
    margin = metrics.get("reference_margin_mm", math.nan)
    if isinstance(margin, (int, float)) and math.isfinite(margin):
        return f"{margin:g} mm from its edge"
    if metrics.get("reference_coverage") == 0:
        return "none of it is in the field of view"
    return "the field of view covers the whole template grid"


def _registration_figures(output_dir: Path, stem: str, metrics: dict) -> list[str]:
    """Overlays that show whether the PET reached the template (MR-based or MR-less)."""
    if qc.is_mr_less(metrics):
        return [
            f"<h3>PET-to-template normalisation ({esc(metrics['normalisation_method'])})</h3>",
            f"<p>Correlation with the tau PET template: {metrics['template_correlation']}; "
            f"brain in field of view: {metrics['brain_coverage']}; reference region in field "
            f"of view: {metrics['reference_coverage']} ({_margin_text(metrics)}); head "
            "outline vs the template's "
            f"(tracer-independent): shift {metrics.get('head_shift_mm', 'n/a')} mm, scale "
            f"{metrics.get('head_scale_pct', 'n/a')} %.</p>",
            _figure(output_dir, stem, "pet2std"),
        ]
    return [
        "<h3>PET-to-T1w coregistration</h3>", _figure(output_dir, stem, "coreg"),
        "<h3>T1w-to-template normalisation</h3>", _figure(output_dir, stem, "t1w2std"),
    ]  # fmt: skip


def write_subject_report(output_dir: Path, subject: str, methods: str = "") -> Path:
    """Write ``OUTPUT_DIR/sub-<label>.html`` for every finished scan of one subject."""
    from taupet_bids.reports.synthesis import synthesis_section, synthetic_images

    stems = subject_scans(output_dir, subject)
    synthetic = synthetic_images(output_dir, subject)
    nav = "".join(f'<a href="#{esc(stem)}">{esc(stem)}</a>' for stem in stems)
    nav += "".join(
        f'<a href="#{esc(p.name.removesuffix("_pet.nii.gz"))}">synthetic</a>' for p in synthetic
    )
    citation = output_dir / "logs" / "CITATION.md"
    methods = methods or (citation.read_text() if citation.exists() else "")
    body = (
        f"<nav>{nav}</nav>"
        + "".join(scan_section(output_dir, stem) for stem in stems)
        + "".join(synthesis_section(image) for image in synthetic)
        + f'<section id="methods"><h2>Methods</h2><pre>{esc(methods)}</pre></section>'
    )
    path = output_dir / f"{subject}.html"
    path.write_text(page(f"taupet-bids report: {subject}", body))
    return path


def write_subject_reports(output_dir: Path, subjects: list[str], methods: str = "") -> list[Path]:
    """Write one report per subject.

    A report that cannot be drawn is logged, not raised: the derivatives are the product.
    """
    written = []
    for subject in subjects:
        try:
            written.append(write_subject_report(output_dir, subject, methods))
            LOG.info("Report: %s", written[-1])
        except Exception as error:  # noqa: BLE001 - one bad figure must not hide the others
            LOG.error("REPORT FAILED %s: %s: %s", subject, type(error).__name__, error)
    return written
