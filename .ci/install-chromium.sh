#!/usr/bin/env bash
# Installs Debian's chromium for the report browser tests (tests/test_reports.py). Idempotent:
# quick when /usr/bin/chromium exists. Installing needs root (or sudo) and apt-get.
set -euo pipefail
if [[ ! -x /usr/bin/chromium ]]; then
    source "$(dirname "$0")/apt-install.sh"
    apt_install "Chromium renders the HTML reports in tests/test_reports.py" chromium
fi
/usr/bin/chromium --version
