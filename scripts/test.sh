#!/usr/bin/env bash
# Install what is missing (Debian) and run the whole test suite: format check,
# unit and end-to-end tests (on epoll, and the end-to-end ones again on
# io_uring), the same suite under ASan + UBSan, a short fuzz run,
# and the Debian package build (make deb, linted).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test

echo "== toolchain"
cc --version | head -1
clang --version | head -1
redis-server --version
memcached -V
/usr/bin/python3 -m pytest --version

echo "== build and test"
make format-check
make -j2
make test
make e2e-uring # the same end-to-end tests with the proxy on --event-backend=io_uring
make asan-test
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
# last: the package build's clean step empties build/. Its install over
# Debian's package runs in a chroot: make deb-test (slow, not here).
echo "== Debian package"
scripts/install-deps.sh deb
DEB_BUILD_OPTIONS=nocheck make deb
echo "== all test stages passed"
