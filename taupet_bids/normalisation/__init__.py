"""MR-less normalisation of tau PET to MNI152NLin6Asym: a trained network, an ANTs baseline."""
