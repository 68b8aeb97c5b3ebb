#!/usr/bin/env bash
# Build the taupet-bids image with podman from the local debootstrap base, offline except for
# PyPI (no registry pulls). Records the build time and image size in build/container-build.json.
#   containers/build.sh            (TAUPET_IMAGE, TAUPET_BASE_IMAGE, TORCH_WHEEL override defaults)
# torch: PyPI's Linux torch==2.13.0 wheel pulls the CUDA packages and PyTorch's CPU index may be
# unreachable, so the CPU wheel is copied into the build context (containers/wheels/, ignored by
# git) and pip prefers it (2.13.0+cpu satisfies ==2.13.0 and sorts above 2.13.0).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=containers/env.sh
source "$here/env.sh"
cd "$root"

"$here/make-base.sh" "$TAUPET_BASE_IMAGE"

torch_wheel="${TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)}"
torch_index=""
if [[ -n "$torch_wheel" && -f "$torch_wheel" ]]; then
    cp -u "$torch_wheel" containers/wheels/
    echo "torch from local wheel $(basename "$torch_wheel")"
else
    torch_index="https://download.pytorch.org/whl/cpu"
    echo "no local torch wheel: torch from $torch_index"
fi

start=$(date +%s)
# --format docker keeps SHELL (pipefail); --no-cache times a full build (CACHE=1 reuses layers).
podman build --pull=never --network host --format docker ${CACHE:+--layers} ${CACHE:---no-cache} \
    --volume "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
    --build-arg "BASE_IMAGE=$TAUPET_BASE_IMAGE" \
    --build-arg "TORCH_INDEX_URL=$torch_index" \
    --build-arg "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
    --build-arg "TAUPET_VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' taupet_bids/__init__.py)" \
    ${BUILD_EXTRA_ARGS:-} \
    -t "$TAUPET_IMAGE" -f Dockerfile .
seconds=$(( $(date +%s) - start ))
size_bytes=$(podman image inspect --format '{{.Size}}' "$TAUPET_IMAGE")
mkdir -p build
cat > build/container-build.json <<JSON
{"image": "$TAUPET_IMAGE", "base": "$TAUPET_BASE_IMAGE", "build_seconds": $seconds,
 "size_bytes": $size_bytes, "size_gb": $(python3 -c "print(round($size_bytes / 1e9, 2))"),
 "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "host_cores": $(nproc)}
JSON
cat build/container-build.json
