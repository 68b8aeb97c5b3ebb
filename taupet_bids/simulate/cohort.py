"""Run a cohort: draw participants, make each subject's images in a worker, write BIDS + truth."""

from __future__ import annotations

import datetime
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from taupet_bids.simulate import anatomy as anatomy_mod
from taupet_bids.simulate import fdg, gm_atrophy, head_motion, truth, tspo, uptake, writer
from taupet_bids.simulate.attenuation.ct import subject_layers
from taupet_bids.simulate.attenuation.mumaps import MR_METHODS
from taupet_bids.simulate.clinical import stream
from taupet_bids.simulate.diagnosis import DIAGNOSIS_MODELS, apply_diagnosis_model
from taupet_bids.simulate.modalities import Scan, T1w, TauPET, Visit
from taupet_bids.simulate.modalities.ct import ct_scan
from taupet_bids.simulate.modalities.otherpet import FdgPET, TspoPET
from taupet_bids.simulate.modalities.petmr import (
    PET_CT_SCANNERS,
    PETCT_REC,
    PairSetting,
    PetMR,
    random_setting,
)
from taupet_bids.simulate.other_anatomy import ANATOMIES, source_anatomy
from taupet_bids.simulate.population import SubjectSpec, draw_cohort

#: Choices of ``CohortConfig.pet_mr``: an MR AC method, or ``mixed`` (one drawn per subject).
PET_MR_CHOICES = (*MR_METHODS, "mixed")
#: Spawn-key suffix of the pairs' random stream (see :func:`pair_rng`).
PAIR_STREAM = 16
#: Spawn-key suffixes of the FDG and TSPO streams (clinical 17, atrophy 20).
FDG_STREAM = 18
TSPO_STREAM = 19
#: PET modalities (``tau`` is the flortaucipir-like tau PET) and atrophy models.
MODALITIES = ("tau", "fdg", "tspo")
ATROPHY_MODELS = ("stage", "braak")


@dataclass(frozen=True)
class CohortConfig:
    """Everything that defines a simulated cohort (same config + seed -> same bytes)."""

    n_subjects: int
    seed: int = 0
    sessions: int = 1
    interval_months: int = 24
    no_t1w_fraction: float = 0.0
    n_frames: int = 4
    tracer_label: str = "18FAV1451"
    rec: str | None = None
    jobs: int | None = None
    anatomy: str = "other"
    #: Image every PET visit as a PET-CT/PET-MR pair with this MR AC method (None: PET only).
    pet_mr: str | None = None
    #: Write the PET-CT's CT (``ct/``) of each pair, a training-time input.
    write_ct: bool = False
    #: PET modalities per visit (tau, fdg, tspo); the default writes tau PET only.
    modalities: tuple[str, ...] = ("tau",)
    #: ``stage``: ventricles and hippocampi by Braak stage; ``braak``: grey-matter loss that
    #: follows the subject's own tau (:mod:`gm_atrophy`), needs the other anatomy.
    atrophy: str = "stage"
    #: ``stage``: the label follows the Braak stage; ``clinical``: the MMSE, with some
    #: impairment unrelated to tau (:mod:`diagnosis`).
    diagnosis: str = "stage"

    def __post_init__(self) -> None:
        if self.anatomy not in ANATOMIES:
            raise ValueError(f"anatomy must be one of {ANATOMIES}, not {self.anatomy!r}")
        if self.pet_mr is not None and self.pet_mr not in PET_MR_CHOICES:
            raise ValueError(f"pet_mr must be one of {PET_MR_CHOICES}, not {self.pet_mr!r}")
        if self.pet_mr is not None and self.anatomy != "other":
            raise ValueError("PET-CT/PET-MR pairs need the 'other' anatomy (its head has a skull)")
        if self.pet_mr is not None and self.rec is not None:
            raise ValueError("PET-CT/PET-MR pairs set the rec- label themselves (ctac, mrac)")
        if self.write_ct and self.pet_mr is None:
            raise ValueError("a CT is written only with PET-CT/PET-MR pairs (pet_mr)")
        if self.n_subjects < 1 or self.sessions < 1 or self.n_frames < 1:
            raise ValueError("n_subjects, sessions and n_frames must be at least 1")
        if not 0.0 <= self.no_t1w_fraction <= 1.0:
            raise ValueError("no_t1w_fraction must be between 0 and 1")
        unknown = sorted(set(self.modalities) - set(MODALITIES))
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be some of {MODALITIES}, not {self.modalities!r}")
        if self.pet_mr is not None and "tau" not in self.modalities:
            raise ValueError(
                "PET-CT/PET-MR pairs are made of the tau PET: keep 'tau' in modalities"
            )
        if self.atrophy not in ATROPHY_MODELS:
            raise ValueError(f"atrophy must be one of {ATROPHY_MODELS}, not {self.atrophy!r}")
        if self.atrophy == "braak" and self.anatomy != "other":
            raise ValueError("atrophy 'braak' needs the 'other' anatomy (the template has none)")
        if self.diagnosis not in DIAGNOSIS_MODELS:
            raise ValueError(f"diagnosis must be one of {DIAGNOSIS_MODELS}, not {self.diagnosis!r}")


ANATOMY_TEXT = {
    "other": "a brain that is not the analysis template's (MNI152NLin2009aSym, labelled by its own "
    "grey and white matter) in a head with face, skull, meninges, neck and shoulders, warped by a "
    "random affine, a smooth deformation and stage-dependent atrophy",
    "template": "the MNI152NLin6Asym template warped by a random affine and a smooth deformation",
}


def _pairs_text(config: CohortConfig) -> str:
    if config.pet_mr is None:
        return ""
    ct = " and the CT of the PET-CT (`ct/`, listed in .bidsignore)" if config.write_ct else ""
    return (
        "Every PET visit is a pair: the same uptake imaged on a PET-CT (`rec-ctac`, CT-based "
        "attenuation correction) and on a PET/MR (`rec-mrac`, MR-based attenuation correction: "
        f"{config.pet_mr}){ct}.\n\n"
    )


def _modalities_text(config: CohortConfig) -> str:
    if config.modalities == ("tau",) and config.atrophy == "stage":
        return ""
    names = {"tau": "tau PET (trc-18FAV1451 or --tracer)", "fdg": "FDG PET (trc-18FFDG, 30-60 min)",
             "tspo": "[11C]PBR28-like TSPO PET (trc-11CPBR28, 60-90 min)"}  # fmt: skip
    atrophy = (
        " Grey-matter loss and ventricles follow each subject's own tau (--atrophy braak)."
        if config.atrophy == "braak"
        else ""
    )
    return (
        f"PET per visit: {'; '.join(names[m] for m in config.modalities)}.{atrophy} "
        "participants.tsv holds MMSE and amyloid status; tspo_genotype is simulator truth.\n\n"
    )


def _readme(config: CohortConfig) -> str:
    return (
        "# Simulated ADNI-style tau PET cohort\n\n"
        "Synthetic digital phantoms made by `taupet-bids-simulate` (taupet-bids): each subject is "
        f"{ANATOMY_TEXT[config.anatomy]}, with a "
        "T1w MPRAGE and a flortaucipir-like tau PET (80-100 min post injection) whose uptake "
        "follows Braak staging. No real person is represented.\n\n"
        f"Subjects: {config.n_subjects}; sessions per subject: {config.sessions}; "
        f"PET frames: {config.n_frames}; seed: {config.seed}.\n\n"
        f"{_pairs_text(config)}"
        f"{_modalities_text(config)}"
        "Ground truth (template-space SUVR maps, regional tables, transforms) is in "
        "`derivatives/truth/`; see docs/simulator.md in taupet-bids for its definitions.\n"
    )


def _today() -> str:
    """Date for CHANGES; honours SOURCE_DATE_EPOCH so whole datasets can be reproducible."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch
        else datetime.datetime.now(datetime.UTC)
    )
    return moment.date().isoformat()


def _write_scan(root: Path, visit: Visit, scan: Scan) -> None:
    folder = writer.subject_folder(root, visit.subject, visit.session) / scan.datatype
    entities = {"sub": visit.subject, "ses": visit.session, **scan.entities}
    writer.write_nifti(folder / writer.bids_name(entities, scan.suffix, ".nii.gz"), scan.image)
    writer.write_json(folder / writer.bids_name(entities, scan.suffix, ".json"), scan.sidecar)


def pair_rng(seed: np.random.SeedSequence) -> np.random.Generator:
    """The subject's generator for PET-MR pairs: its own stream, so the PET-CT draws are the
    same numbers as without pairs."""
    key = (*seed.spawn_key, PAIR_STREAM)
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=key))


def _write_pair(
    root: Path,
    visit: Visit,
    anatomy: anatomy_mod.Anatomy,
    petct: Scan,
    t1w: Scan | None,
    pairing: tuple[np.random.Generator, PairSetting, PetMR, bool],
) -> None:
    """The PET/MR half of a pair (and the CT when asked), with their truth."""
    rng, setting, generator, write_ct = pairing
    layers = subject_layers(anatomy, visit.template, petct.truth["working_grid"])
    petmr = generator.generate(anatomy, visit, rng, petct, layers, setting)
    _write_scan(root, visit, petmr)
    truth.write_scan_truth(root, visit, anatomy, petmr, t1w)
    if write_ct:
        _write_scan(root, visit, ct_scan(layers, setting.bone_hu, petct))


def _other_pets(subject: SubjectSpec, config: CohortConfig) -> list[tuple]:
    """(generator, its own random stream) for each non-tau PET modality asked for."""
    out = []
    if "fdg" in config.modalities:
        rng = stream(subject.seed, FDG_STREAM)
        profile = fdg.random_profile(rng, subject.clinical)
        out.append((FdgPET(profile, config.n_frames, config.rec), rng))
    if "tspo" in config.modalities:
        rng = stream(subject.seed, TSPO_STREAM)
        profile = tspo.random_profile(rng, subject.clinical)
        out.append((TspoPET(profile, config.n_frames, config.rec), rng))
    return out


def _write_atrophy_truth(root: Path, visit: Visit, loss: dict[int, float]) -> None:
    folder = writer.subject_folder(root / truth.TRUTH_DIR, visit.subject, visit.session) / "anat"
    name = writer.bids_name({"sub": visit.subject, "ses": visit.session, "desc": "atrophy"},
                            "T1w", ".json")  # fmt: skip
    writer.write_json(
        folder / name,
        {
            "Description": "Grey-matter fraction lost per DK label at this visit (--atrophy "
            "braak): the T1w's grey matter is darkened towards CSF by it",
            "grey_matter_loss": {str(k): round(v, 6) for k, v in loss.items()},
            "displacement_severity": {
                k: round(v, 6) for k, v in gm_atrophy.severities(loss).items()
            },
        },
    )


def simulate_subject(root: Path, subject: SubjectSpec, config: CohortConfig) -> str:
    """Make and write every visit of one subject; return a one-line summary."""
    start = time.perf_counter()
    template = source_anatomy(config.anatomy)
    rng = np.random.default_rng(subject.seed)
    realistic = config.anatomy == "other"
    braak = config.atrophy == "braak"
    severity = anatomy_mod.atrophy_severity(rng, subject.baseline.tau.stage) if realistic else None
    base = anatomy_mod.random_anatomy(rng, template, None if braak else severity)
    profile = uptake.random_profile(rng, realistic=realistic)
    traits = None
    if braak:
        traits = gm_atrophy.random_traits(stream(subject.seed, gm_atrophy.ATROPHY_STREAM))
        first = subject.baseline
        loss = gm_atrophy.regional_loss(traits, profile, first.tau, first.age)
        base = anatomy_mod.with_atrophy(base, template, gm_atrophy.severities(loss))
    others = _other_pets(subject, config)
    pet_generator = TauPET(config.tracer_label, config.rec, config.n_frames)
    pairing = None
    if config.pet_mr is not None:
        pet_generator = TauPET(config.tracer_label, PETCT_REC, config.n_frames, PET_CT_SCANNERS)
        second = pair_rng(subject.seed)
        setting = random_setting(second, config.pet_mr)
        pairing = (second, setting, PetMR(pet_generator), config.write_ct)
    for index, spec in enumerate(subject.visits):
        anatomy = base if index == 0 else base.with_pose(anatomy_mod.random_pose(rng))
        motion = head_motion.restlessness(subject.seed, spec.diagnosis)
        visit = Visit(subject.label, spec.session, spec.months, spec.tau, profile, template, motion)
        t1w_visit = visit
        if traits is not None:
            loss = gm_atrophy.regional_loss(traits, profile, spec.tau, spec.age)
            head = gm_atrophy.atrophied_head(template, loss)
            t1w_visit = replace(visit, template=replace(template, head_t1w=head))
            fractions = gm_atrophy.atrophied_fractions(template, loss)
            visit = replace(visit, template=replace(template, fractions=fractions))
            _write_atrophy_truth(root, visit, loss)
        t1w = T1w().generate(anatomy, t1w_visit, rng) if subject.has_t1w else None
        if t1w is not None:
            _write_scan(root, visit, t1w)
        inverse = anatomy.from_template(template.grid_2mm.world_coordinates())
        if "tau" in config.modalities:
            pet = pet_generator.generate(anatomy, visit, rng)
            if pairing is not None:
                pet.truth["attenuation"] = {"method": "ct", **pairing[1].skull()}
            _write_scan(root, visit, pet)
            truth.write_scan_truth(root, visit, anatomy, pet, t1w, inverse)
            if pairing is not None:
                _write_pair(root, visit, anatomy, pet, t1w, pairing)
        for number, (generator, own_rng) in enumerate(others):
            scan = generator.generate(anatomy, visit, own_rng)
            _write_scan(root, visit, scan)
            first = number == 0 and "tau" not in config.modalities
            truth.write_scan_truth(root, visit, anatomy, scan, t1w, inverse, write_anat=first)
    stages = ",".join(str(v.tau.stage) for v in subject.visits)
    return (
        f"sub-{subject.label}: {len(subject.visits)} visit(s), Braak {stages}, "
        f"T1w {'yes' if subject.has_t1w else 'no'}, PET {'+'.join(config.modalities)}, "
        f"{time.perf_counter() - start:.1f} s"
    )


def simulate_cohort(
    out: str | Path,
    config: CohortConfig,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> list[SubjectSpec]:
    """Write a simulated BIDS dataset and its ground truth to ``out``; return the participants."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    subjects = draw_cohort(
        config.n_subjects,
        config.seed,
        config.sessions,
        config.interval_months,
        config.no_t1w_fraction,
    )
    subjects = apply_diagnosis_model(subjects, config.diagnosis)
    description = {
        "name": f"taupet-bids simulated cohort (seed {config.seed})",
        "command": command or repr(config),
        "readme": _readme(config),
        "date": _today(),
    }
    writer.write_dataset_files(root, subjects, description, config.diagnosis)
    if config.write_ct:
        (root / ".bidsignore").write_text("**/ct\n")
    truth.write_truth_description(root, writer.read_json(root / "dataset_description.json"))
    source_anatomy(config.anatomy)
    jobs = max(1, min(config.jobs or os.cpu_count() or 1, len(subjects)))
    log(f"simulating {len(subjects)} subject(s) into {root} with {jobs} process(es)")
    if jobs == 1:
        for i, subject in enumerate(subjects, 1):
            log(f"[{i}/{len(subjects)}] {simulate_subject(root, subject, config)}")
        return subjects
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(simulate_subject, root, s, config) for s in subjects]
        for i, future in enumerate(futures, 1):
            log(f"[{i}/{len(subjects)}] {future.result()}")
    return subjects
