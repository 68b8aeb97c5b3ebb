#!/usr/bin/env bash
# Install a one-node Slurm (Debian's slurm-wlm) and munge if they are missing. Idempotent.
# The daemons are not started here: tests/test_slurm.py starts its own slurmctld, slurmd and
# munged on free ports with a generated slurm.conf in a temporary folder, and stops them.
set -euo pipefail
needed=(slurmctld slurmd sbatch squeue scontrol munged)
missing=()
for program in "${needed[@]}"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "Slurm and munge are installed ($(slurmctld -V))"
    exit 0
fi
echo "installing slurm-wlm and munge (missing: ${missing[*]})"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends slurm-wlm munge
slurmctld -V
