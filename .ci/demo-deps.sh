#!/usr/bin/env bash
# demo-deps.sh installs SoftHSM2 for `make demo` when it is missing and we
# are root; without it the demo falls back to a clearly labelled software key.
set -u
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "demo: installing softhsm2 so the demo CA key lives in a PKCS#11 token" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2) >&2 \
    || echo "demo: softhsm2 could not be installed; the demo will use a software key" >&2
fi
exit 0
