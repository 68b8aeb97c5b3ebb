# Sourced by the .ci/install-*.sh scripts: apt_install WHY PACKAGE... installs Debian packages as
# root, through sudo for another user, or stops with a message saying what to run instead.
apt_install() {
    local why=$1
    shift
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "error: $why, and installing it needs root." >&2
            echo "Run once as root: apt-get install --no-install-recommends $*" >&2
            exit 1
        fi
        echo "installing $* with sudo ($why)" >&2
        sudo=(sudo)
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $why; apt-get is missing (not Debian?): install $* yourself." >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
}
