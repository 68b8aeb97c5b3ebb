#!/usr/bin/env bash
# Install what the container test needs (Debian/Ubuntu, root): podman, buildah, runc, debootstrap.
# Idempotent: installs nothing when all are present.
set -euo pipefail
missing=()
for program in podman buildah runc debootstrap; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
[[ ${#missing[@]} -eq 0 ]] && { echo "container tools present: $(podman --version)"; exit 0; }
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends podman buildah runc debootstrap uidmap fuse-overlayfs
