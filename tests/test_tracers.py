"""Tracer recognition from sidecar TracerName and the trc- entity."""

import pytest

from taupet_bids.tracers import TRACERS, identify_tracer


@pytest.mark.parametrize(
    "alias",
    [
        "flortaucipir",
        "AV1451",
        "av-1451",
        "18FAV1451",
        "FTP",
        "T807",
        "[18F]flortaucipir",
        "[18F]AV-1451",
        "18F-AV-1451",
    ],
)
def test_flortaucipir_aliases(alias):
    tracer = identify_tracer(alias)
    assert tracer is not None and tracer.name == "flortaucipir"
    assert tracer.window_min == (80.0, 100.0)
    assert tracer.reference_region == "InfCerebGrey"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("MK-6240", "MK6240"),
        ("[18F]MK6240", "MK6240"),
        ("RO948", "RO948"),
        ("PI-2620", "PI2620"),
        ("PM-PBB3", "PMPBB3"),
        ("APN-1607", "PMPBB3"),
        ("GTP1", "GTP1"),
        ("18FFDG", "FDG"),
        ("Fluorodeoxyglucose", "FDG"),
        ("[18F]FDG", "FDG"),
        ("PBR28", "PBR28"),
        ("[11C]PBR28", "PBR28"),
        ("[11C]PiB", "PiB"),
        ("[18F]AV-45", "florbetapir"),
        ("Amyvid", "florbetapir"),
        ("[18F]florbetaben", "florbetaben"),
        ("Vizamyl", "flutemetamol"),
        ("[18F]NAV4694", "NAV4694"),
    ],
)
def test_other_aliases(alias, name):
    assert identify_tracer(alias).name == name


def test_defaults_per_family():
    by_name = {t.name: t for t in TRACERS}
    assert by_name["MK6240"].window_min == (90.0, 110.0)
    assert by_name["RO948"].window_min == (70.0, 90.0)
    assert by_name["PI2620"].window_min == (30.0, 60.0)
    assert by_name["FDG"].window_min == (30.0, 60.0)
    assert by_name["FDG"].reference_region == "Pons"
    assert by_name["PBR28"].reference_region is None
    # MK-6240's meningeal signal blurs into the full region's edge: it takes the deep part.
    assert by_name["MK6240"].reference_region == "InfCerebGreyDeep"
    # Amyloid tracers: the Centiloid project's windows and the whole cerebellum.
    assert by_name["PiB"].window_min == by_name["florbetapir"].window_min == (50.0, 70.0)
    assert by_name["florbetaben"].window_min == by_name["flutemetamol"].window_min == (90.0, 110.0)
    amyloid = [t for t in TRACERS if t.target == "amyloid"]
    assert len(amyloid) == 5 and all(t.reference_region == "WholeCereb" for t in amyloid)
    others = [t for t in TRACERS if t.target == "tau" and t.name != "MK6240"]
    assert all(t.reference_region == "InfCerebGrey" for t in others)


def test_no_alias_is_shared_between_tracers():
    from taupet_bids.tracers import _key

    seen = {}
    for tracer in TRACERS:
        for alias in {_key(a) for a in (tracer.name, *tracer.aliases)}:
            assert seen.setdefault(alias, tracer.name) == tracer.name, alias


def test_sidecar_wins_over_entity():
    assert identify_tracer("MK6240", "18FAV1451").name == "MK6240"
    assert identify_tracer(None, "18FAV1451").name == "flortaucipir"
    assert identify_tracer("", "FTP").name == "flortaucipir"
    # An unknown sidecar name falls back to the entity.
    assert identify_tracer("unknown-compound", "MK6240").name == "MK6240"


@pytest.mark.parametrize("name", [None, "", "DASB", "UCB-J", "flortaucipirr", "1451"])
def test_unknown_tracers(name):
    assert identify_tracer(name, None) is None
