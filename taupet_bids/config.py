"""One typed run configuration, built once from the command line and read everywhere else."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from taupet_bids import atlases

#: Atlases whose regional tables are written by default.
DEFAULT_ATLASES = atlases.ATLAS_NAMES

#: Where regional means and the reference are taken (``--regional-mask``): ``template`` = the
#: template's labels and masks; ``subject-gm`` = cut to the subject's grey matter from an
#: Atropos segmentation of the T1w (MR-based scans only; MR-less scans keep the template).
REGIONAL_MASKS = ("template", "subject-gm")
#: The default of ``--regional-mask``, chosen by the participant benchmark (docs/benchmarks.md):
#: on phantoms whose anatomy is not the template, the subject's grey matter brings every
#: composite closer to the truth (Braak V/VI MAPE 1.35 % vs 1.85 %, ICC 0.984 vs 0.954).
DEFAULT_REGIONAL_MASK = "subject-gm"
#: How the PET-space partial-volume correction of ``subject-gm`` scans draws its regions
#: (``--pvc-regions``): ``hard`` labels (a voxel is all grey, white matter or CSF) or ``soft``
#: regions (each voxel shared between them by its fractions from the T1w, docs/pvc.md).
PVC_REGIONS = ("hard", "soft")
DEFAULT_PVC_REGIONS = "hard"


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to know; immutable so no stage can change it behind another."""

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path
    participant_label: tuple[str, ...] = ()
    session: str | None = None
    tracer: str | None = None
    rec: str | None = None
    run: str | None = None
    reference_region: str | None = None
    pet_window: tuple[float, float] | None = None
    atlases: tuple[str, ...] = DEFAULT_ATLASES
    nprocs: int = field(default_factory=lambda: os.cpu_count() or 1)
    omp_nthreads: int = 1
    mem_gb: float | None = None
    plugin: str = "MultiProc"
    skip_bids_validation: bool = False
    use_fsl: bool = False
    pvc: tuple[str, ...] = ()
    pvc_fwhm: float | None = None
    pvc_scanner_fwhm: float | None = None
    #: A user table of scanner resolutions, searched before the shipped one (scanners.py).
    scanner_resolution: Path | None = None
    #: Smooth every scan to this FWHM (mm) before quantification (None: no smoothing).
    smooth_to_fwhm: float | None = None
    centaur_masks: Path | None = None
    mr_less: str = "auto"
    mr_less_method: str = "network+ants"
    mr_less_model: Path | None = None
    regional_mask: str = DEFAULT_REGIONAL_MASK
    pvc_regions: str = DEFAULT_PVC_REGIONS
    #: ``--classify``: a trained AD-vs-CN classifier bundle (None: no classification).
    classifier_bundle: Path | None = None
    #: ``--harmonize``: ``none``, ``auto`` (PET/MR scans) or ``all``; and its trained bundle.
    harmonize: str = "none"
    harmonization_bundle: Path | None = None
    #: ``--synthesize``: the synthesis tasks asked for, and ``--synthesis-model``: one trained
    #: bundle per task (task -> bundle folder), checked by the parser.
    synthesize: tuple[str, ...] = ()
    synthesis_models: tuple[tuple[str, Path], ...] = ()
    synthesis_architecture: str = "unet"
    #: ``--clinical KEY=VALUE``: clinical values of a diffusion bundle for every session, over
    #: each session's participants.tsv / sessions.tsv; ``--n-samples``: samples per session.
    clinical: tuple[str, ...] = ()
    n_samples: int = 1
    seed: int = 42
    verbose: int = 0
    tau_cutpoint: float | None = None
    braak_reference_diagnosis: str = "CN"
    braak_thresholds: tuple[float, ...] | None = None
    braak_thresholds_source: str | None = None
    #: Write into an output folder whose dataset_description.json names another pipeline.
    force_output_dir: bool = False

    def to_dict(self) -> dict:
        """JSON-ready view, for logs and the derivatives' provenance."""
        return {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in asdict(self).items()
        }

    def synthesis_bundle(self, task: str) -> Path | None:
        """The bundle ``--synthesis-model`` gave for ``task``, or None."""
        return dict(self.synthesis_models).get(task)

    def plugin_args(self) -> dict:
        """Arguments for Nipype's execution plugin."""
        args: dict = {"raise_insufficient": False}
        if self.plugin == "MultiProc":
            args["n_procs"] = self.nprocs
            if self.mem_gb:
                args["memory_gb"] = self.mem_gb
        elif self.plugin in ("SLURM", "SLURMGraph"):
            # One Slurm job per Nipype node, sized like one MultiProc worker: omp_nthreads cores
            # and an equal share of --mem-gb. Site options (partition, account, time) come from
            # TAUPET_SBATCH_ARGS. Jobs run this interpreter, so they need the same venv on the
            # compute nodes (no container). See docs/hpc.md.
            sbatch = [f"--cpus-per-task={self.omp_nthreads}"]
            if self.mem_gb:
                sbatch.append(f"--mem={max(1, int(self.mem_gb * 1024 / self.nprocs))}M")
            sbatch.append(os.environ.get("TAUPET_SBATCH_ARGS", ""))
            args["sbatch_args"] = " ".join(part for part in sbatch if part)
            args["template"] = (
                "#!/bin/bash\nexport NIPYPE_NO_ET=1\n"
                f"export OMP_NUM_THREADS={self.omp_nthreads}\n"
                f"export ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={self.omp_nthreads}\n"
            )
            if self.plugin == "SLURM":
                args["max_jobs"] = self.nprocs  # at most --nprocs jobs queued at once
            else:
                args["dont_resubmit_completed_jobs"] = True  # a rerun submits what is left
        return args
