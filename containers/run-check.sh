#!/usr/bin/env bash
# Run the built image on a small simulated dataset and check what it wrote.
#   containers/run-check.sh [N_SUBJECTS]      (default 1; image: $TAUPET_IMAGE)
# The container gets no network, a read-only root file system and a read-only input mount,
# so the run proves the image is self-contained (templates baked in) and writes only to /out
# and /work. Records the run time in build/container-run.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=containers/env.sh
source "$here/env.sh"
n="${1:-1}"
py="${PYTHON:-$root/.venv/bin/python}"
export NIPYPE_NO_ET=1

tmp="$(mktemp -d /var/tmp/taupet-container-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m taupet_bids.simulate.cli "$tmp/bids" --n-subjects "$n" --seed 5
mkdir -p "$tmp/out" "$tmp/work"
chmod 0777 "$tmp/out" "$tmp/work"   # the image runs as uid 1000
subjects=$(find "$tmp/bids" -mindepth 1 -maxdepth 1 -type d -name 'sub-*' -printf '%f\n' |
           sed 's/^sub-//' | sort)

start=$(date +%s)
podman run --rm --network none --read-only --tmpfs /tmp \
    -v "$tmp/bids:/data:ro" -v "$tmp/out:/out" -v "$tmp/work:/work" \
    "$TAUPET_IMAGE" /data /out participant -w /work --nprocs 2 --omp-nthreads 1
seconds=$(( $(date +%s) - start ))

"$py" "$here/check_outputs.py" "$tmp/bids" "$tmp/out" $subjects
mkdir -p "$root/build"
printf '{"image": "%s", "participants": %s, "run_seconds": %s, "date": "%s"}\n' \
    "$TAUPET_IMAGE" "$n" "$seconds" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$root/build/container-run.json"
cat "$root/build/container-run.json"
