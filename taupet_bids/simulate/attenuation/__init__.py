"""Attenuation physics of PET-CT and PET-MR: a subject's CT, mu-maps, and the AC bias field.

One job per module: :mod:`hounsfield` (HU -> mu at 511 keV), :mod:`ct` (the subject's CT from
the phantom's head layers), :mod:`mumaps` (the mu-map a CT or an MR method would assume) and
:mod:`projection` (the bias field an assumed mu-map leaves in the reconstructed image) and
:mod:`spheres` (a head of concentric spheres on which the bias is checked against the literature).
"""
