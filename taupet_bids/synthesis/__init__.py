"""Synthetic PET from other modalities (tau from T1w first), shipped as MONAI bundles."""
