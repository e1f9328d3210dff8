#!/usr/bin/env bash
# Side-by-side throughput: direct server vs Debian's twemproxy vs ours, all
# measured in one run on this machine with the same backends and pool config.
#
#   bench/run.sh                 # ours = ./nutcracker, twemproxy = /usr/sbin/nutcracker
#   OURS=build/nutcracker N=100000 bench/run.sh
#
# Knobs (environment): OURS, TWEM, N (requests per redis-benchmark run, 200000),
# C (clients, 50), R (key space for -r, 100000), MC_SECONDS (per memcached run, 5),
# WORKERS (2: one more column, ours with global: worker_processes WORKERS; 0 = no column).
# Everything it starts is stopped by pid on exit; temp files live in a mktemp dir.
set -euo pipefail

cd "$(dirname "$0")/.."

OURS=${OURS:-./nutcracker}
TWEM=${TWEM:-/usr/sbin/nutcracker}
N=${N:-200000}
C=${C:-50}
R=${R:-100000}
MC_SECONDS=${MC_SECONDS:-5}
WORKERS=${WORKERS:-2}
PY=/usr/bin/python3

for tool in redis-server redis-benchmark memcached "$PY"; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install redis-server redis-tools memcached python3)" >&2; exit 1; }
done
[ -x "$OURS" ] || { echo "bench: $OURS not built (run make)" >&2; exit 1; }
[ -x "$TWEM" ] || { echo "bench: $TWEM missing (apt-get install nutcracker)" >&2; exit 1; }
HAVE_MEMASLAP=0
if command -v memcaslap >/dev/null; then HAVE_MEMASLAP=1; fi

TMP=$(mktemp -d /tmp/nc-bench.XXXXXX)
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then sleep 1; kill -9 "$pid" 2>/dev/null || true; fi
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free TCP ports below the ephemeral range, checked by binding them.
read -r -a PORTS <<< "$("$PY" - <<'EOF'
import os, random, socket
rnd = random.Random(os.getpid())
out = []
while len(out) < 18:
    p = rnd.randrange(12000, 32000)
    if p in out:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        out.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, out)))
EOF
)"
RPORTS=("${PORTS[@]:0:4}")
MPORTS=("${PORTS[@]:4:4}")
OURS_R=${PORTS[8]}; OURS_M=${PORTS[9]}; OURS_S=${PORTS[10]}
TWEM_R=${PORTS[11]}; TWEM_M=${PORTS[12]}; TWEM_S=${PORTS[13]}
WORK_R=${PORTS[14]}; WORK_M=${PORTS[15]}; WORK_S=${PORTS[16]}

wait_port() {
  local port=$1 i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: nothing listening on $port" >&2
  return 1
}

for p in "${RPORTS[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$TMP" \
    --dbfilename "dump-$p.rdb" >"$TMP/redis-$p.log" 2>&1 &
  PIDS+=($!)
done
MC_USER=()
[ "$(id -u)" -eq 0 ] && MC_USER=(-u root)
for p in "${MPORTS[@]}"; do
  memcached -l 127.0.0.1 -p "$p" -U 0 -t 1 -m 256 "${MC_USER[@]}" >"$TMP/memcached-$p.log" 2>&1 &
  PIDS+=($!)
done
for p in "${RPORTS[@]}" "${MPORTS[@]}"; do wait_port "$p"; done

pools_conf() { # redis_port memcache_port
  echo "bench_redis:"
  echo "  listen: 127.0.0.1:$1"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  redis: true"
  echo "  servers:"
  for p in "${RPORTS[@]}"; do echo "   - 127.0.0.1:$p:1"; done
  echo "bench_memcache:"
  echo "  listen: 127.0.0.1:$2"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  servers:"
  for p in "${MPORTS[@]}"; do echo "   - 127.0.0.1:$p:1"; done
}
pools_conf "$OURS_R" "$OURS_M" > "$TMP/ours.yml"
pools_conf "$TWEM_R" "$TWEM_M" > "$TMP/twem.yml"
{ printf 'global:\n  worker_processes: %s\npools:\n' "$WORKERS"; pools_conf "$WORK_R" "$WORK_M" | sed 's/^/  /'; } \
  > "$TMP/workers.yml"

"$OURS" -c "$TMP/ours.yml" -s "$OURS_S" -a 127.0.0.1 -v 4 -o "$TMP/ours.log" &
PIDS+=($!)
"$TWEM" -c "$TMP/twem.yml" -s "$TWEM_S" -a 127.0.0.1 -v 4 -o "$TMP/twem.log" &
PIDS+=($!)
for p in "$OURS_R" "$OURS_M" "$TWEM_R" "$TWEM_M"; do wait_port "$p"; done
if [ "$WORKERS" -gt 0 ]; then
  "$OURS" -c "$TMP/workers.yml" -s "$WORK_S" -a 127.0.0.1 -v 4 -o "$TMP/workers.log" &
  PIDS+=($!)
  wait_port "$WORK_R"; wait_port "$WORK_M"
fi

echo "ours:      $("$OURS" -V 2>&1 | head -1) ($OURS)"
echo "twemproxy: $("$TWEM" -V 2>&1 | head -1) ($TWEM)"
echo "backends:  4 x redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), 4 x memcached $(memcached -V | cut -d' ' -f2)"
echo "load:      redis-benchmark -n $N -c $C -r $R; memcached: $([ $HAVE_MEMASLAP = 1 ] && echo "memcaslap ${MC_SECONDS}s" || echo "python client ${MC_SECONDS}s")"
echo "machine:   $(nproc) cores; all processes share them, so compare the ratios, not the absolutes"
echo

# redis-benchmark --csv prints "test","rps",...; keep the rps of the named test.
rb() { # port test-name extra-args...
  local port=$1 name=$2; shift 2
  timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -n "$N" -c "$C" -r "$R" -q --csv "$@" 2>/dev/null \
    | awk -F'","' -v t="$name" '{ gsub(/"/, "", $1); gsub(/"/, "", $2); if ($1 == t) print int($2) }' \
    | head -1
}

RESULTS=()
row() { # label direct twem ours ours-with-workers
  RESULTS+=("$1|$2|$3|$4|$5")
}
ours_workers() { # run the same load against the worker-mode proxy, if any
  if [ "$WORKERS" -gt 0 ]; then "$@" || true; fi
}

for spec in "SET|-t set -P 1" "GET|-t get -P 1" "SET|-t set -P 16" "GET|-t get -P 16" "MSET (10 keys)|-t mset -P 1"; do
  label=${spec%%|*}; args=${spec#*|}
  name=$label     # the test name redis-benchmark prints in its CSV
  pipe=$(echo "$args" | sed 's/.*-P \([0-9]*\).*/\1/')
  # shellcheck disable=SC2086
  d=$(rb "${RPORTS[0]}" "$name" $args || true)
  # shellcheck disable=SC2086
  t=$(rb "$TWEM_R" "$name" $args || true)
  # shellcheck disable=SC2086
  o=$(rb "$OURS_R" "$name" $args || true)
  # shellcheck disable=SC2086
  w=$(ours_workers rb "$WORK_R" "$name" $args)
  row "redis $label -P $pipe" "${d:-0}" "${t:-0}" "${o:-0}" "${w:-0}"
  echo "  done: redis $label -P $pipe" >&2
done

mc_load() { # port -> ops/s
  local port=$1
  if [ "$HAVE_MEMASLAP" = 1 ]; then
    timeout $((MC_SECONDS + 60)) memcaslap -s "127.0.0.1:$port" -T 2 -c 32 -t "${MC_SECONDS}s" -X 64 2>/dev/null \
      | sed -n 's/.*TPS: \([0-9]*\).*/\1/p' | tail -1
  else
    timeout $((MC_SECONDS + 60)) "$PY" - "$port" "$MC_SECONDS" <<'EOF'
import socket, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
count = [0] * 8
def worker(n):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    end = time.monotonic() + secs
    i = 0
    while time.monotonic() < end:
        k = b"k%d_%d" % (n, i % 5000)
        if i % 10 == 0:
            s.sendall(b"set " + k + b" 0 0 64\r\n" + b"x" * 64 + b"\r\n")
            f.readline()
        else:
            s.sendall(b"get " + k + b"\r\n")
            while f.readline() not in (b"END\r\n", b""):
                pass
        i += 1
    count[n] = i
ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(int(sum(count) / secs))
EOF
  fi
}
d=$(mc_load "${MPORTS[0]}" || true)
t=$(mc_load "$TWEM_M" || true)
o=$(mc_load "$OURS_M" || true)
w=$(ours_workers mc_load "$WORK_M")
row "memcached get/set 9:1" "${d:-0}" "${t:-0}" "${o:-0}" "${w:-0}"

echo
"$PY" - "$WORKERS" "${RESULTS[@]}" <<'EOF'
import sys
workers = int(sys.argv[1])
rows = [r.split("|") for r in sys.argv[2:]]
def ratio(a, b):
    a, b = int(a), int(b)
    return "%.2f" % (a / b) if a and b else "n/a"
hdr = ["workload", "direct", "twemproxy", "ours", "ours/twemproxy", "ours/direct"]
if workers:
    hdr += ["ours %d workers" % workers, "workers/ours"]
w = [max(len(hdr[0]), max(len(r[0]) for r in rows))] + [max(10, len(h)) for h in hdr[1:]]
fmt = "  ".join("%%-%ds" % w[0] if i == 0 else "%%%ds" % w[i] for i in range(len(hdr)))
print("requests per second (higher is better)")
print(fmt % tuple(hdr))
print(fmt % tuple("-" * x for x in w))
for label, d, t, o, wk in rows:
    cells = [label, d, t, o, ratio(o, t), ratio(o, d)]
    if workers:
        cells += [wk, ratio(wk, o)]
    print(fmt % tuple(cells))
EOF
