# Settings shared by the container scripts (sourced, not run).
# Podman here runs nested inside another container; three settings make it work:
#   1. runc as the OCI runtime (crun is absent or fails in this sandbox),
#   2. default_ulimits that fit under the host's hard limit (podman's default nofile is higher),
#   3. the host CA bundle mounted into RUN steps so pip trusts the TLS proxy in front of PyPI.
# They live in containers/containers.conf, used through CONTAINERS_CONF so the host's
# /etc/containers is left alone.
_taupet_containers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$_taupet_containers_dir/containers.conf}"
export TAUPET_BASE_IMAGE="${TAUPET_BASE_IMAGE:-localhost/taupet-base:bookworm}"
export TAUPET_IMAGE="${TAUPET_IMAGE:-localhost/taupet-bids:test}"
export HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
