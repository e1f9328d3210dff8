#!/usr/bin/env bash
# Side by side: direct server vs Debian's twemproxy vs ours, every figure of
# bench/README.md from one command (sections and knobs: bench/bench.py).
#
#   make bench                         # builds ./nutcracker and the bench tools first
#   bench/run.sh [section...]          # throughput instructions syscalls latency workers allocs
#   OURS=build/nutcracker ROUNDS=3 bench/run.sh throughput
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/bench.py "$@"
