#!/usr/bin/env bash
# Install a one-node Slurm (Debian's slurm-wlm) and munge if they are missing. Idempotent.
# The daemons are not started here: tests/test_slurm.py starts its own slurmctld, slurmd and
# munged on free ports with a generated slurm.conf in a temporary folder, and stops them.
set -euo pipefail
needed=(slurmctld slurmd sbatch squeue scontrol sinfo munged munge)
missing=()
for program in "${needed[@]}"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "Slurm and munge are installed ($(slurmctld -V))"
    exit 0
fi
source "$(dirname "$0")/apt-install.sh"
apt_install "tests/test_slurm.py runs a one-node Slurm cluster (missing: ${missing[*]})" \
    slurm-wlm munge
slurmctld -V
