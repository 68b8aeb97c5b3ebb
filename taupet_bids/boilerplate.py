"""Citable methods text describing exactly what ran, with the versions that ran it."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from taupet_bids import __version__, atlases, greymatter, templates
from taupet_bids.config import RunConfig

_PACKAGES = ("antspyx", "nipype", "niworkflows", "pybids", "templateflow", "nibabel", "numpy")

REFERENCES = {
    "ants": "Avants BB et al. (2011) A reproducible evaluation of ANTs similarity metric "
    "performance in brain image registration. NeuroImage 54:2033-2044.",
    "nipype": "Gorgolewski K et al. (2011) Nipype: a flexible, lightweight and extensible "
    "neuroimaging data processing framework in Python. Front Neuroinform 5:13.",
    "templateflow": "Ciric R et al. (2022) TemplateFlow: FAIR-sharing of multi-scale, "
    "multi-species brain models. Nat Methods 19:1568-1571.",
    "mni152nlin6asym": "Evans AC et al. (2012) Brain templates and atlases. NeuroImage 62:911-922.",
    "dk": "Desikan RS et al. (2006) An automated labeling system for subdividing the human "
    "cerebral cortex on MRI scans into gyral based regions of interest. NeuroImage "
    "31:968-980.",
    "braak": "Schöll M et al. (2016) PET imaging of tau deposition in the aging human brain. "
    "Neuron 89:971-982; Maass A et al. (2017) Comparison of multiple tau-PET measures as "
    "biomarkers in aging and Alzheimer's disease. NeuroImage 157:448-463.",
    "metatemporal": "Jack CR Jr et al. (2017) Defining imaging biomarker cut points for brain "
    "aging and Alzheimer's disease. Alzheimers Dement 13:205-216.",
    "reference": "Baker SL, Maass A, Jagust WJ (2017) Considerations and code for partial "
    "volume correcting [18F]-AV-1451 tau PET data. Data Brief 15:648-657.",
    "n4": "Tustison NJ et al. (2010) N4ITK: improved N3 bias correction. IEEE Trans Med "
    "Imaging 29:1310-1320.",
    "atropos": "Avants BB, Tustison NJ, Wu J, Cook PA, Gee JC (2011) An open source "
    "multivariate framework for n-tissue segmentation with evaluation on public data. "
    "Neuroinformatics 9:381-400.",
    "mixel": "Santago P, Gage HD (1993) Quantification of MR brain images by mixture density "
    "and partial volume modeling. IEEE Trans Med Imaging 12:566-574.",
    "joshi": "Joshi A, Koeppe RA, Fessler JA (2009) Reducing between scanner differences in "
    "multi-center PET studies. NeuroImage 46:154-159.",
    "conv5fc3": "Wen J et al. (2020) Convolutional neural networks for classification of "
    "Alzheimer's disease: overview and reproducible evaluation. Med Image Anal 63:101694.",
    "occlusion": "Zeiler MD, Fergus R (2014) Visualizing and understanding convolutional "
    "networks. ECCV 2014, LNCS 8689:818-833.",
    "integratedgradients": "Sundararajan M, Taly A, Yan Q (2017) Axiomatic attribution for deep "
    "networks. ICML 2017, PMLR 70:3319-3328; computed with Captum: Kokhlikyan N et al. (2020) "
    "Captum: a unified and generic model interpretability library for PyTorch. "
    "arXiv:2009.07896.",
    "harmoniser": "taupet-bids PET-MR to PET-CT harmoniser: a 3-D network predicting a smooth, "
    "bounded log-ratio correction from the PET/MR SUVR image and the T1w, with an auxiliary "
    "pseudo-CT head; see docs/harmonisation.md and the bundle's model card.",
    "unet": "Ronneberger O, Fischer P, Brox T (2015) U-Net: convolutional networks for "
    "biomedical image segmentation. MICCAI 2015, LNCS 9351:234-241.",
    "mcrvqgan": "MCR-VQGAN: a scalable and cost-effective tau PET synthesis approach for "
    "Alzheimer's disease imaging (multi-scale convolutions, residual blocks and CBAM in a "
    "VQGAN); Esser P, Rombach R, Ommer B (2021) Taming transformers for high-resolution image "
    "synthesis. CVPR 2021:12873-12883.",
    "ldm": "Rombach R, Blattmann A, Lorenz D, Esser P, Ommer B (2022) High-resolution image "
    "synthesis with latent diffusion models. CVPR 2022:10684-10695; after TauPETGen: "
    "text-conditional tau PET image synthesis based on latent diffusion models (Jang et al.).",
    "monai": "Cardoso MJ et al. (2022) MONAI: an open-source framework for deep learning in "
    "healthcare. arXiv:2211.02701.",
}
#: References cited only when the run used them.
_OPTIONAL_REFERENCES = {
    "atropos": lambda config: config.regional_mask == "subject-gm",
    "mixel": lambda config: bool(config.pvc) and config.regional_mask == "subject-gm"
    and config.pvc_regions == "soft",
    **{key: lambda config: config.classifier_bundle is not None
       for key in ("conv5fc3", "occlusion")},
    "integratedgradients": lambda config: config.classifier_bundle is not None
    and "attribution_steps" in _bundle_json(config.classifier_bundle, "inference.json"),
    "harmoniser": lambda config: config.harmonization_bundle is not None,
    "monai": lambda config: (config.classifier_bundle or config.harmonization_bundle) is not None
    or bool(config.synthesize),
    "unet": lambda config: bool(config.synthesize) and config.synthesis_architecture == "unet",
    "mcrvqgan": lambda config: bool(config.synthesize) and config.synthesis_architecture == "vqgan",
    "ldm": lambda config: bool(config.synthesize) and config.synthesis_architecture == "diffusion",
}  # fmt: skip
#: Millimetres per voxel of the classifier's input (2 mm template voxels averaged in 2x2x2).
_CLASSIFIER_VOXEL_MM = 4


def package_versions() -> dict[str, str]:
    """Installed versions of the libraries that do the work."""
    found = {"taupet-bids": __version__}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _resolution_source(config: RunConfig) -> str:
    """How each scan's own resolution was found (the order of taupet_bids.plan.scan_resolution)."""
    if config.pvc_fwhm:
        return f"taken as {config.pvc_fwhm:g} mm FWHM for every scan"
    table = "taupet-bids' per-scanner resolution table"
    if config.scanner_resolution:
        table = (
            f"a per-scanner resolution table ({config.scanner_resolution.name}, taking "
            f"precedence over {table})"
        )
    text = (
        f"looked up in {table} by the scanner model and reconstruction named in its BIDS sidecar "
        "(Manufacturer, ManufacturersModelName, ReconMethodName, ReconFilterSize); a scanner's "
        "system resolution was combined in quadrature with the scan's Gaussian reconstruction "
        "filter"
    )
    if config.pvc_scanner_fwhm:
        text += (
            f"; for scanners not in the table, the scanner resolution "
            f"({config.pvc_scanner_fwhm:g} mm) in quadrature with each scan's Gaussian "
            "reconstruction filter (BIDS ReconFilterSize)"
        )
    return text


def _smoothing_sentence(config: RunConfig) -> str:
    if not config.smooth_to_fwhm:
        return ""
    target = f"{config.smooth_to_fwhm:g}"
    return (
        f" Each averaged PET was then smoothed, before its registration and quantification, to "
        f"a uniform resolution of {target} mm FWHM [joshi] with an isotropic Gaussian of FWHM "
        f"sqrt({target}^2 - f^2) mm, where f is the scan's own resolution, "
        f"{_resolution_source(config)}; scans already at or coarser than {target} mm were left "
        "as they were."
    )


def _pvc_sentence(config: RunConfig) -> str:
    if not config.pvc:
        return "No partial-volume correction was applied."
    names = {"gtm": "geometric transfer matrix", "rbv": "region-based voxel-wise",
             "mg": "Mueller-Gaertner"}  # fmt: skip
    methods = ", ".join(names[m] for m in config.pvc)
    if config.smooth_to_fwhm:
        psf = (
            f"a Gaussian point-spread function of {config.smooth_to_fwhm:g} mm FWHM, the "
            "resolution the images were smoothed to (a scan coarser than that kept its own)"
        )
    elif config.pvc_fwhm:
        psf = f"a Gaussian point-spread function of {config.pvc_fwhm:g} mm FWHM"
    else:
        psf = (
            "a Gaussian point-spread function per scan, whose FWHM was "
            f"{_resolution_source(config)}"
        )
    return (
        f"Partial-volume corrected values were also computed ({methods}) with {psf}. Scans "
        "with a T1w image were corrected on their own PET grid, with the atlas regions brought "
        "into PET space through the inverse of their registrations, and the regional values "
        "carried back to the template regions; scans normalised without MRI were corrected on "
        "the template-space image. The reference region was corrected as a region of its own "
        "and each corrected image divided by its mean there."
    )


def _staging_sentence(config: RunConfig) -> str:
    """How the per-scan Braak stage was assigned (nothing without the Braak atlas)."""
    if "Braak" not in config.atlases:
        return ""
    parts = []
    if config.pvc:
        parts.append(
            "Flortaucipir scans were assigned a Braak stage (0, I-II, III-IV or V-VI) from their "
            "partial-volume corrected Braak composites with the thresholds of Maass et al. "
            "(2017; 1.13, 1.30 and 1.87), going from the latest composite to the earliest [braak]."
        )
    if config.braak_thresholds:
        values = ", ".join(f"{v:g}" for v in config.braak_thresholds)
        parts.append(
            f"Uncorrected composites were staged with the same rule and thresholds of {values} "
            f"for Braak I/II, III/IV and V/VI ({config.braak_thresholds_source})."
        )
    return " ".join(parts)


def _regional_mask_sentence(config: RunConfig) -> str:
    """How regions and the reference met the subject's anatomy (``--regional-mask``)."""
    if config.regional_mask != "subject-gm":
        return ""
    gm = greymatter
    return (
        "For scans with a T1w image, the N4-corrected, brain-masked T1w was segmented into "
        f"CSF, grey and white matter with Atropos [atropos] (k-means initialisation, "
        f"{gm.ITERATIONS} EM iterations with a Markov random field whose labels were updated "
        "synchronously, at "
        f"{gm.SEGMENTATION_MM:g} mm), and the tissue probabilities were brought to template "
        "space with the T1w-to-template transforms (linear interpolation). Grey-matter "
        "regions (cortical Desikan-Killiany regions, cerebellar cortex, hippocampus, amygdala, "
        "and the Braak and meta-temporal regions made of them) were averaged only over voxels "
        f"with a grey-matter probability of at least {gm.TISSUE_THRESHOLD:g}; a region left "
        "empty kept its template voxels. The reference region was likewise restricted to the "
        f"subject's grey matter, excluding voxels within {gm.EDGE_MARGIN_MM:g} mm of "
        "the brain mask's edge (venous sinuses), and the template mask was used when fewer than "
        f"{gm.MIN_REFERENCE_VOXELS} voxels remained. The partial-volume correction's regions "
        "followed the same tissues (cortex and white matter where their probability was at "
        f"least {gm.TISSUE_THRESHOLD:g}, named by the nearest template label), and its "
        "reference was the subject's grey matter of the template reference mask without the "
        f"edge margin, whose spill-over the correction models.{_soft_regions_sentence(config)} "
        "CenTauRz and scans normalised without MRI kept the template's regions and reference "
        "mask."
    )


def _soft_regions_sentence(config: RunConfig) -> str:
    """How ``--pvc-regions soft`` shared voxels between tissues (nothing otherwise)."""
    if not config.pvc or config.pvc_regions != "soft":
        return ""
    return (
        " In the correction each brain voxel was shared between the nearest grey-matter label, "
        "the nearest white-matter label and CSF by its tissue fractions, estimated by fitting a "
        "partial-volume mixel model (three pure tissues and their two mixtures) [mixel] to the "
        "histogram of the brain's T1w intensities, starting from the Atropos "
        "class means, and brought onto the PET grid through the inverse of the PET-to-T1w "
        "registration (linear interpolation)."
    )


def _mr_less_paragraph(config: RunConfig) -> str:
    """How scans without a usable T1w were normalised (nothing when MR-less was disabled)."""
    if config.mr_less == "never":
        return ""
    which = "All PET scans" if config.mr_less == "always" else "PET scans without a T1w image"
    if config.mr_less_method in ("network", "network+ants"):
        how = (
            "were normalised to MNI152NLin6Asym without MRI by taupet-bids' trained network (an "
            "affine regression network followed by a MONAI LocalNet displacement stage, trained "
            "on simulated tau PET; model card in the package), whose output was applied as a "
            "displacement field"
        )
        if config.mr_less_method == "network+ants":
            how += (
                ", refined by a short affine registration (antspyx, mutual information, two "
                "coarse levels) of the network-normalised PET to taupet-bids' tau PET template, "
                "its similarity metric restricted to the PET's field of view"
            )
    else:
        how = (
            "were normalised to MNI152NLin6Asym without MRI by registering the averaged PET to "
            "taupet-bids' tau PET template (affine, antspyx)"
        )
    return (
        f"\n{which} {how}. The normalised PET was checked by its correlation with the tau PET "
        "template, the field-of-view coverage of the brain and the reference region, the "
        "reference region's distance to the edge of the field of view, and "
        "tracer-independent checks of its head outline against the template's, of the "
        "reference region's placement, and of how far a second short affine registration to "
        "the tau PET template moved its brain.\n"
    )


def _bundle_json(bundle: Path, name: str) -> dict:
    """One of the bundle's config files; the CLI checked the bundle before the run."""
    return json.loads((bundle / "configs" / name).read_text())


def _classification_paragraph(config: RunConfig) -> str:
    """What ``--classify`` ran, naming the model by version and weights checksum."""
    if config.classifier_bundle is None:
        return ""
    meta = _bundle_json(config.classifier_bundle, "metadata.json")
    ours = meta["taupet_bids"]
    inference = _bundle_json(config.classifier_bundle, "inference.json")
    mask_mm = int(inference["mask_voxels"]) * _CLASSIFIER_VOXEL_MM
    steps = inference.get("attribution_steps")  # bundles before 0.2.1 have no attribution map
    attribution = (
        " Each voxel's contribution to the AD log-odds was computed by integrated gradients "
        f"[integratedgradients] ({int(steps)} steps from the brain at SUVR 1.0) and summarised "
        "in the same regions."
        if steps
        else ""
    )
    return (
        "\nEach template-space SUVR image was classified as Alzheimer's disease (AD) or "
        "cognitively normal (CN) by a Conv5_FC3-style 3-D convolutional network [conv5fc3] "
        f'(model "{meta["name"]}" version {meta["version"]}, weights sha256 '
        f"{ours['model_sha256']}; its training data and validation are in the bundle's model "
        "card) applied with MONAI [monai] to the SUVR image clipped to 0-4 and averaged into "
        f"{_CLASSIFIER_VOXEL_MM} mm voxels; a scan was labelled AD when its AD probability was "
        f"at least {float(ours['threshold']):g}. Occlusion sensitivity [occlusion] was "
        f"computed by setting each {mask_mm} mm cube of the brain's bounding box in turn to "
        "SUVR 1.0 (reference-level uptake) and taking the resulting drop in AD probability, "
        "and summarised as its mean over each bilateral Desikan-Killiany grey-matter region "
        f"and Braak stage region.{attribution}\n"
    )


#: Which scans ``--harmonize`` corrects, as the methods text says it.
_HARMONIZED_SCANS = {
    "auto": "PET scans whose AttenuationCorrection named an MR-based method (Dixon, UTE, ZTE, "
    "atlas, MR-based) or whose scanner was a PET/MR system",
    "all": "all PET scans",
}


def _harmonization_paragraph(config: RunConfig) -> str:
    """What ``--harmonize`` ran, naming the model by version and weights checksum."""
    if config.harmonization_bundle is None or config.harmonize == "none":
        return ""
    meta = _bundle_json(config.harmonization_bundle, "metadata.json")
    ours = meta["taupet_bids"]
    bound = float(ours["architecture"]["bound"])
    told = {
        "ct": "The network was told whether each scan's attenuation correction was CT-based, "
        "as its PET sidecar said (a zero correction), or MR-based. ",
        "method": "Each scan's attenuation correction method, as its PET sidecar named it "
        "(Dixon, atlas, UTE, another MR-based method, or CT-based, whose correction is zero), "
        "selected the network's correction. ",
    }.get(ours["architecture"].get("conditioning", "none"), "")
    return (
        f"\nFor {_HARMONIZED_SCANS[config.harmonize]}, the template-space SUVR image was also "
        "harmonised towards CT-based attenuation correction [harmoniser] "
        f'(model "{meta["name"]}" version {meta["version"]}, weights sha256 '
        f"{ours['model_sha256']}, applied with MONAI [monai]): from the SUVR image and the "
        "subject's T1w in template space (the template's T1w for scans without one), both "
        "averaged into 4 mm voxels, the network predicted a log-ratio correction on a 16 mm "
        f"grid, bounded to +-{bound:g}, interpolated trilinearly to 2 mm, and the SUVR image "
        f"was multiplied by its exponential. {told}Harmonised images and regional values are "
        "reported beside the measured ones, which are unchanged.\n"
    )


#: The network ``--synthesis-architecture`` names for tau-from-t1w, as the methods text says it.
_SYNTHESIS_NETWORKS = {
    "unet": "a 3-D U-Net [unet]",
    "vqgan": "MCR-VQGAN [mcrvqgan] on axial 4 mm slices, stacked back into a volume",
    "diffusion": "a latent diffusion model [ldm] conditioned on the T1w and on MMSE, amyloid "
    "status and age (DDIM sampling; the mean of the samples, their SD and the clinical values "
    "used are in each image's sidecar)",
}
#: How each ``--synthesize`` task's images were made, for the methods paragraph.
_FROM_T1W = (
    "the N4-corrected T1w was resampled to MNI152NLin6Asym at 2 mm with its own registration, "
    "masked to the template brain, divided by its brain median and averaged to 4 mm"
)
SYNTHESIS_METHODS = {
    "tau-from-t1w": "Synthetic tau PET images were predicted from each session's T1w by "
    f"{{network}} ({_FROM_T1W})",
    "tspo-from-t1w": "Synthetic TSPO PET images were predicted from each session's T1w by a 3-D "
    "U-Net [unet] of depthwise-separable convolutions with self-attention at its deepest level "
    f"({_FROM_T1W})",
    "tau-from-fdg": "Synthetic tau PET images were predicted from each FDG scan's SUVR image "
    "(the FDG scan processed as any scan, on MNI152NLin6Asym at 2 mm) by a 3-D Dense-U-Net "
    "[unet] (masked to the template brain, clipped to SUVR 0-4 and averaged to 4 mm)",
}


def _synthesis_paragraph(config: RunConfig) -> str:
    """What ``--synthesize`` ran, naming each model by version and weights checksum."""
    sentences, made = [], []
    for task, bundle in config.synthesis_models:
        meta = _bundle_json(bundle, "metadata.json")
        sentences.append(
            f'{task} with model "{meta["name"]}" version {meta["version"]} (weights sha256 '
            f"{meta['taupet_bids']['model_sha256']}; training data and validation in its model "
            "card)"
        )
        network = _SYNTHESIS_NETWORKS[config.synthesis_architecture]
        made.append(SYNTHESIS_METHODS[task].format(network=network))
    if not sentences:
        return ""
    return (
        "\n" + ". ".join(made) + ". The networks ran with MONAI [monai]; each predicted SUVR "
        "was interpolated back to 2 mm and summarised over the same regions as measured scans. "
        "Synthetic images are not measurements and were kept apart from measured values ("
        + "; ".join(sentences)
        + ").\n"
    )


def methods_text(config: RunConfig) -> str:
    """The methods paragraph for a paper, in Markdown, with references."""
    v = package_versions()
    reference = config.reference_region or atlases.DEFAULT_REFERENCE
    spec = atlases.reference_regions()[reference]
    window = (
        f"{config.pet_window[0]:g}-{config.pet_window[1]:g} min post-injection"
        if config.pet_window
        else "the tracer's standard late window (80-100 min post-injection for flortaucipir)"
    )
    text = f"""\
# Methods

Tau PET data were processed with taupet-bids {v["taupet-bids"]}, which builds its workflow with
Nipype {v["nipype"]} [nipype] and performs image registration and bias correction with ANTs
through antspyx {v["antspyx"]} [ants]. Inputs were queried with PyBIDS {v["pybids"]}.

For each PET scan, the frames acquired within {window} were selected, realigned to their
duration-weighted mean with rigid registrations (a coarse pass, then a fine pass started from
it with the coarsely realigned mean as reference), and averaged with frame durations as
weights. The T1-weighted image was corrected
for intensity non-uniformity with N4 [n4] and registered to the MNI152NLin6Asym template
[mni152nlin6asym] (TemplateFlow {v["templateflow"]} [templateflow]) with a symmetric
normalisation (rigid, affine and SyN stages); the brain mask was obtained by warping the
template's brain mask back to the T1w. The averaged PET was registered to the skull-stripped
T1w with a rigid transform (mutual information), and resampled once into template space at
2 mm by composing the PET-to-T1w and T1w-to-template transforms (linear
interpolation).{_smoothing_sentence(config)}

Standardized uptake value ratios (SUVR) were computed by dividing by the mean uptake in the
{spec["name"]} ({spec["definition"]}) [reference]. Regional SUVR was averaged over the
Desikan-Killiany regions [dk] (FreeSurfer cvs_avg35 aparc+aseg, registered to
MNI152NLin6Asym), over Braak stage regions I-VI [braak] and over the meta-temporal region
[metatemporal]. {_regional_mask_sentence(config)} {_pvc_sentence(config)}
{_staging_sentence(config)}
{_mr_less_paragraph(config)}{_classification_paragraph(config)}{_harmonization_paragraph(config)}{_synthesis_paragraph(config)}
## References
"""
    return (
        text
        + "".join(
            f"- [{key}] {ref}\n"
            for key, ref in REFERENCES.items()
            if _OPTIONAL_REFERENCES.get(key, lambda _: True)(config)
        )
        + (
            f"\nTemplate space: {templates.TEMPLATE}, 2 mm. Library versions: "
            + ", ".join(f"{name} {ver}" for name, ver in v.items())
            + ".\n"
        )
    )
