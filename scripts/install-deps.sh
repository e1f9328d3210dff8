#!/usr/bin/env bash
# Install the Debian packages that are missing, then stop the services the
# packages start on their default ports (demo and tests start their own).
#   scripts/install-deps.sh demo   # build + backends for the demo
#   scripts/install-deps.sh test   # everything the test suite uses
#   scripts/install-deps.sh bench  # and what bench/ measures with (callgrind, strace)
#   scripts/install-deps.sh deb    # what make deb needs (dpkg-dev, debhelper, lintian)
#   scripts/install-deps.sh deb-test  # and the fresh Debian root of make deb-test (debootstrap)
set -euo pipefail

# socat: the demo's and README's way to talk to the memcached pool and the stats port
# liburing-dev: the io_uring event backend (--event-backend=io_uring)
DEMO=(build-essential pkg-config libyaml-dev libssl-dev liburing-dev redis-server redis-tools memcached socat)
# llvm: llvm-symbolizer, without which sanitizer and libFuzzer reports give bare addresses;
# libmemcached-tools: memcping, memcstat, memcdump... run through the proxy by the tests;
# nodejs, npm: the Node.js clients of tests/e2e/node (from the npm registry, pinned);
# chromium + python3-websocket: the status page's browser test (DevTools protocol);
# man-db: man(1), with which the test checks the manual pages render
TEST=("${DEMO[@]}" clang clang-format libclang-rt-14-dev llvm redis-sentinel nutcracker python3-pytest python3-redis
      python3-pymemcache python3-pylibmc libmemcached-tools nodejs npm curl openssl stunnel4 chromium
      python3-websocket man-db)
BENCH=("${TEST[@]}" valgrind strace)
# the Debian package's build (make deb; its Build-Depends are in debian/control);
# dpkg-dev: dpkg-buildpackage, dpkg-parsechangelog, dpkg-buildflags
DEB=(build-essential dpkg-dev pkg-config libyaml-dev libssl-dev liburing-dev debhelper lintian)
DEB_TEST=("${DEB[@]}" debootstrap)
case "${1:-test}" in
demo) PACKAGES=("${DEMO[@]}") ;;
test) PACKAGES=("${TEST[@]}") ;;
bench) PACKAGES=("${BENCH[@]}") ;;
deb) PACKAGES=("${DEB[@]}") ;;
deb-test) PACKAGES=("${DEB_TEST[@]}") ;;
*) echo "usage: $0 demo|test|bench|deb|deb-test" >&2; exit 2 ;;
esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PACKAGES[@]}"; do
    # a Node.js from elsewhere (NodeSource's bundles npm, and conflicts with Debian's) will do
    case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "== installing: ${missing[*]}"
for attempt in 1 2 3; do
    if $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        break
    fi
    [ "$attempt" -eq 3 ] && { echo "apt-get install failed" >&2; exit 1; }
    sleep 10
done

# Packaged daemons run as their own system users; stop those only.
for svc in redis-server redis-sentinel memcached nutcracker; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
for prog in redis-server redis-sentinel memcached nutcracker; do
    for pid in $(pidof "$prog" 2>/dev/null || true); do
        case "$(stat -c %U "/proc/$pid" 2>/dev/null || true)" in
        redis | memcache | nutcracker) $SUDO kill "$pid" 2>/dev/null || true ;;
        esac
    done
done
sleep 0.5
