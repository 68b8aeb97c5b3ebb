#!/usr/bin/env bash
# Installs Debian's chromium for the report browser tests (tests/test_reports.py); idempotent.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
/usr/bin/chromium --version
