"""PET-MR to PET-CT harmonisation: which scans need it, the network, its bundle (no Nipype)."""
