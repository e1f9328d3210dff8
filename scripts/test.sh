#!/usr/bin/env bash
# Install what is missing (Debian) and run the whole test suite: unit and
# end-to-end tests, the same suite under ASan + UBSan, and a short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential clang pkg-config libyaml-dev redis-server redis-sentinel redis-tools
      memcached nutcracker python3-pytest python3-redis python3-pymemcache curl socat"

missing=()
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The packages start their own services on the default ports; tests choose their
# own ports, but stop those so nothing else answers there.
for svc in redis-server redis-sentinel memcached nutcracker; do
    (service "$svc" stop >/dev/null 2>&1 || true)
done

FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
make format-check
make -j2
make test
make asan-test
make fuzz FUZZ_SECONDS="$FUZZ_SECONDS"
echo "all test stages passed"
