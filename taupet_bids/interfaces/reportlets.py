"""Report figures of one scan as graph nodes (niworkflows' reportlets, for tau PET).

Each node draws one figure (:mod:`taupet_bids.core.figures`) into its own folder; the figure is
then staged and committed like every other derivative, so the report only embeds files and a
failed figure fails its scan's graph where it can be seen, not the report.
"""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    Str,
    TraitedSpec,
    isdefined,
)

from taupet_bids import templates
from taupet_bids.core import figures


class _FigureOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the figure (SVG or PNG)")


class _Reportlet(SimpleInterface):
    """Draw one figure into the node's folder; subclasses say what to draw and its file name."""

    output_spec = _FigureOutputSpec
    _out_name = ""

    def _draw(self, out_file: Path) -> None:
        raise NotImplementedError

    def _run_interface(self, runtime):
        out_file = Path(runtime.cwd) / self._out_name
        self._draw(out_file)
        self._results["out_file"] = str(out_file)
        return runtime


class _MotionPlotInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="per-frame motion table (TSV)")


class MotionPlot(_Reportlet):
    """Translations, rotations and framewise displacement per frame (SVG)."""

    input_spec = _MotionPlotInputSpec
    _out_name = "motion.svg"

    def _draw(self, out_file: Path) -> None:
        figures.motion_plot(Path(self.inputs.in_file), out_file)


class _CoregistrationOverlayInputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, mandatory=True, desc="preprocessed T1w")
    pet = File(exists=True, mandatory=True, desc="averaged PET in its own space")
    pet2t1w = InputMultiObject(
        File(exists=True), mandatory=True, desc="PET-to-T1w transforms (ANTs order; one rigid)"
    )
    mask = File(exists=True, mandatory=True, desc="brain mask in T1w space")


class CoregistrationOverlay(_Reportlet):
    """PET on the T1w with the brain-mask outline (PNG)."""

    input_spec = _CoregistrationOverlayInputSpec
    _out_name = "coreg.png"

    def _draw(self, out_file: Path) -> None:
        figures.coregistration_overlay(
            Path(self.inputs.t1w), Path(self.inputs.pet),
            [Path(xfm) for xfm in self.inputs.pet2t1w], Path(self.inputs.mask), out_file,
        )  # fmt: skip


class _NormalisationOverlayInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image to show on the template")
    transforms = InputMultiObject(
        File(exists=True),
        desc="ANTs transforms to the template, in ANTs order; none: already in template space",
    )
    title = Str("T1w", usedefault=True, desc="what the image is, for the figure title")
    template = File(exists=True, desc="template image (default: the working template T1w)")
    template_mask = File(exists=True, desc="template brain mask (default: the working template's)")


class NormalisationOverlay(_Reportlet):
    """An image on the template, with the template's brain outline and edges (PNG)."""

    input_spec = _NormalisationOverlayInputSpec
    _out_name = "normalisation.png"

    def _draw(self, out_file: Path) -> None:
        template, mask = self.inputs.template, self.inputs.template_mask
        transforms = self.inputs.transforms if isdefined(self.inputs.transforms) else []
        figures.normalization_overlay(
            Path(self.inputs.in_file),
            Path(template) if isdefined(template) else templates.t1w_path(),
            Path(mask) if isdefined(mask) else templates.brain_mask_path(),
            [Path(xfm) for xfm in transforms],
            out_file,
            title=self.inputs.title,
        )


class _RegionOverlayInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="template-space SUVR image")
    reference_region = Str(mandatory=True, desc="label of the reference region's mask")


class RegionOverlay(_Reportlet):
    """Reference region, meta-temporal ROI and Braak I outlined on the SUVR image (PNG)."""

    input_spec = _RegionOverlayInputSpec
    _out_name = "regions.png"

    def _draw(self, out_file: Path) -> None:
        figures.region_overlay(
            Path(self.inputs.in_file),
            templates.reference_mask_path(self.inputs.reference_region),
            templates.atlas_path("MetaTemporal"),
            templates.atlas_path("Braak"),
            out_file,
        )


class _SUVRMontageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="template-space SUVR image")


class SUVRMontage(_Reportlet):
    """Axial SUVR slices on the template T1w (PNG)."""

    input_spec = _SUVRMontageInputSpec
    _out_name = "montage.png"

    def _draw(self, out_file: Path) -> None:
        figures.suvr_montage(Path(self.inputs.in_file), templates.t1w_path(), out_file)


class _OcclusionMontageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="occlusion map on the template grid")


class OcclusionMontage(_Reportlet):
    """Axial slices of the AD-vs-CN occlusion map on the template T1w (PNG)."""

    input_spec = _OcclusionMontageInputSpec
    _out_name = "occlusion.png"

    def _draw(self, out_file: Path) -> None:
        figures.occlusion_montage(Path(self.inputs.in_file), templates.t1w_path(), out_file)


class AttributionMontage(_Reportlet):
    """Axial slices of the AD-vs-CN attribution map (integrated gradients) on the template."""

    input_spec = _OcclusionMontageInputSpec
    _out_name = "attribution.png"

    def _draw(self, out_file: Path) -> None:
        figures.occlusion_montage(
            Path(self.inputs.in_file), templates.t1w_path(), out_file,
            title="contribution to the AD log-odds (integrated gradients)",
        )  # fmt: skip


class _HarmonizationMontageInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="log-ratio correction on the template grid")


class HarmonizationMontage(_Reportlet):
    """Axial slices of the --harmonize correction (percent of SUVR) on the template T1w (PNG)."""

    input_spec = _HarmonizationMontageInputSpec
    _out_name = "harmonization.png"

    def _draw(self, out_file: Path) -> None:
        figures.harmonization_montage(Path(self.inputs.in_file), templates.t1w_path(), out_file)
