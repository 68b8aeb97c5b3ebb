"""Reports of a real participant + group run, opened in headless Chromium.

The reports carry no JavaScript and embed every figure (inline SVG or PNG data: URIs), so the
checks are: every ``<img>`` has a data: source or names a file that exists, every link points at
an existing file or an id on the page, Chromium logs no uncaught error while rendering, and the
screenshot is a real page (not blank). The run is two simulated participants with two
sessions, so the longitudinal plot is drawn too. Needs /usr/bin/chromium
(``.ci/install-chromium.sh``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]  # fmt: skip


class _Links(HTMLParser):
    """Image sources, link targets, element ids and scripts of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str | None] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src"))
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag == "script":
            self.scripts += 1


def page_problems(html_file: Path) -> list[str]:
    """Missing images, broken links and scripts of a report (empty when it is sound)."""
    parser = _Links()
    parser.feed(html_file.read_text())
    problems = [f"script tag x{parser.scripts}"] if parser.scripts else []
    for src in parser.images:
        if not src or not (src.startswith("data:image/") or (html_file.parent / src).exists()):
            problems.append(f"missing image {src!r:.60}")
    for href in parser.links:
        if href.startswith("#"):
            if href[1:] not in parser.ids:
                problems.append(f"broken anchor {href}")
        elif not (html_file.parent / href).exists():
            problems.append(f"broken link {href}")
    return problems


def render(html_file: Path, screenshot: Path, profile: Path) -> str:
    """Screenshot the page in headless Chromium; return Chromium's log."""
    done = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         f"--screenshot={screenshot}", "--window-size=1280,2000", html_file.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert screenshot.exists(), done.stderr[-2000:]
    return done.stdout + done.stderr


@dataclass(frozen=True)
class Run:
    bids: Path
    out: Path
    log: str


def _cli(*args) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("taupet-bids")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def run(tmp_path_factory, templateflow_home) -> Run:
    root = tmp_path_factory.mktemp("reports")
    bids, out = root / "bids", root / "out"
    simulate = Path(sys.executable).with_name("taupet-bids-simulate")
    subprocess.run([simulate, bids, "--n-subjects", "2", "--seed", "5", "--sessions", "2"],
                   check=True, capture_output=True)  # fmt: skip
    participant = _cli(bids, out, "participant", "-w", root / "work", "--skip-bids-validation")
    assert participant.returncode == 0, participant.stdout[-3000:]
    group = _cli(bids, out, "group")
    assert group.returncode == 0, group.stdout[-3000:] + group.stderr[-3000:]
    return Run(bids, out, participant.stdout + group.stdout)


def test_chromium_is_installed() -> None:
    assert CHROMIUM.exists(), "run .ci/install-chromium.sh"


def test_progress_and_summary_are_logged(run: Run) -> None:
    assert "T1w sub_001_ses_M000_T1w_gm: T1w registration" in run.log
    assert "sub_001_ses_M000_trc_18FAV1451: PET preprocessing" in run.log
    assert "[4/4 done]" in run.log
    assert "Finished: 4 of 4 scan(s) succeeded" in run.log
    assert "Group report:" in run.log


@pytest.mark.parametrize("name", ["sub-001.html", "sub-002.html", "group/report.html"])
def test_report_renders_in_chromium_with_every_image(run: Run, name: str, tmp_path) -> None:
    report = run.out / name
    assert not page_problems(report)
    shot = tmp_path / "screenshot.png"
    log = render(report, shot, tmp_path / "profile")
    assert "Uncaught" not in log, log[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "blank screenshot"
    text = report.read_text()
    expected = ("Summary", "Motion", "PET-to-T1w", "T1w-to-template", "SUVR montage",
                "Regional SUVR", "Warnings", "References") if name.startswith("sub") else (
                "Meta-temporal SUVR by diagnosis", "Regional SUVR across scans",
                "Estimated Braak stage", "Longitudinal change", "Quality control")  # fmt: skip
    for heading in expected:
        assert heading in text, heading
    if name == "group/report.html":
        # Both participants have two sessions: the longitudinal plot is drawn, not its fallback.
        assert 'aria-label="longitudinal meta-temporal SUVR"' in text
        assert "No participant has more than one session" not in text


def test_checker_catches_a_missing_image_and_a_broken_link(tmp_path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<img src="nope.png"><a href="gone.tsv">x</a><a href="#nowhere">y</a>')
    assert len(page_problems(page)) == 3


def test_render_logs_an_uncaught_error(tmp_path) -> None:
    page = tmp_path / "throws.html"
    page.write_text('<p>text</p><script>throw new Error("boom")</script>')
    log = render(page, tmp_path / "screenshot.png", tmp_path / "profile")
    assert "Uncaught Error: boom" in log


def test_wide_table_equals_the_participant_tables(run: Run) -> None:
    wide = pd.read_csv(run.out / "group" / "suvr_wide.tsv", sep="\t", na_values="n/a")
    assert len(wide) == 4
    for _, row in wide.iterrows():
        session = run.out / row["participant_id"] / row["session_id"] / "pet"
        for atlas, region, column in (("MetaTemporal", "metatemporal", "MetaTemporal_metatemporal"),
                                      ("Braak", "BraakIII", "Braak_BraakIII"),
                                      ("DK", "left-entorhinal", "DK_left_entorhinal")):  # fmt: skip
            table = next(session.glob(f"{row['scan']}_*_seg-{atlas}_*_suvr.tsv"))
            expected = pd.read_csv(table, sep="\t").set_index("region").loc[region, "suvr_mean"]
            assert row[column] == expected, (row["scan"], column)
    assert {"age", "diagnosis", "tau_positive", "braak_stage_estimate"} <= set(wide.columns)


def test_qc_table_has_registration_scores(run: Run) -> None:
    qc = pd.read_csv(run.out / "group" / "qc.tsv", sep="\t", na_values="n/a")
    assert qc["coreg_nmi"].between(1.0, 2.0).all()
    assert qc["t1w2std_correlation"].between(0.9, 1.0).all()


def test_outputs_with_reports_pass_the_bids_validator(run: Run) -> None:
    validator = Path(sys.executable).with_name("bids-validator-deno")
    done = subprocess.run([validator, "--json", run.out], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    issues = json.loads(done.stdout)["issues"]["issues"]
    assert not [issue for issue in issues if issue["severity"] == "error"]


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"reference_margin_mm": 12.5, "reference_coverage": 1.0}, "12.5 mm from its edge"),
        ({"reference_margin_mm": float("nan"), "reference_coverage": 0.0}, "none of it"),
        ({"reference_coverage": 1.0}, "covers the whole template grid"),
    ],
)
def test_the_report_says_where_the_reference_lies_in_the_field_of_view(metrics, expected):
    from taupet_bids.reports.subject import _margin_text

    assert expected in _margin_text(metrics)
