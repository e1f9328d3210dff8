#!/usr/bin/env bash
# TLS on the client leg: ours with listen_tls against stunnel in front of Debian's
# nutcracker (the usual way to put TLS before twemproxy), on the same load:
# redis-benchmark --tls, GET and SET at pipeline 16, over 4 plain redis-servers.
#
#   bench/tls.sh                  # ours = ./nutcracker
#   OURS=build/nutcracker N=400000 bench/tls.sh
#
# For each run it reads utime+stime of the proxy processes from /proc/<pid>/stat
# before and after, and prints the CPU each spends per request (ours alone;
# stunnel + nutcracker together) next to the throughput. Knobs: OURS, TWEM, N
# (requests per run, 400000), C (clients, 50), R (key space, 100000), P (pipeline, 16).
# Everything it starts is stopped by pid on exit; temp files live in a mktemp dir.
set -euo pipefail

cd "$(dirname "$0")/.."

OURS=${OURS:-./nutcracker}
TWEM=${TWEM:-/usr/sbin/nutcracker}
N=${N:-400000}
C=${C:-50}
R=${R:-100000}
P=${P:-16}
PY=/usr/bin/python3
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)

for tool in redis-server redis-benchmark openssl "$PY"; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
[ -n "$STUNNEL" ] || { echo "bench: stunnel4 not found (apt-get install stunnel4)" >&2; exit 1; }
[ -x "$OURS" ] || { echo "bench: $OURS not built (run make)" >&2; exit 1; }
[ -x "$TWEM" ] || { echo "bench: $TWEM missing (apt-get install nutcracker)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/nc-bench-tls.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r -a PORTS <<< "$("$PY" - <<'PYEOF'
import os, random, socket
rnd = random.Random(os.getpid())
out = []
while len(out) < 10:
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
PYEOF
)"
RPORTS=("${PORTS[@]:0:4}")
OURS_T=${PORTS[4]}; OURS_S=${PORTS[5]}
TWEM_R=${PORTS[6]}; TWEM_S=${PORTS[7]}; STUN_T=${PORTS[8]}

wait_port() {
  local port=$1 i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: nothing listening on $port" >&2
  return 1
}

# a CA and a certificate for 127.0.0.1, as a deployment would have
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/ca.key" \
  -out "$TMP/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/server.key" \
  -out "$TMP/server.csr" -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -CAcreateserial \
  -out "$TMP/server.crt" -days 2 -copy_extensions copy 2>/dev/null

for p in "${RPORTS[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$TMP" \
    --dbfilename "dump-$p.rdb" >"$TMP/redis-$p.log" 2>&1 &
  PIDS+=($!)
done
for p in "${RPORTS[@]}"; do wait_port "$p"; done

pool() { # listen-port [listen_tls]
  echo "bench_redis:"
  echo "  listen: 127.0.0.1:$1"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  redis: true"
  [ -n "${2:-}" ] && echo "  listen_tls: {cert_file: $TMP/server.crt, key_file: $TMP/server.key}"
  echo "  servers:"
  for p in "${RPORTS[@]}"; do echo "   - 127.0.0.1:$p:1"; done
}
pool "$OURS_T" tls > "$TMP/ours.yml"
pool "$TWEM_R" > "$TMP/twem.yml"
cat > "$TMP/stunnel.conf" <<STEOF
foreground = yes
pid =
debug = 3
output = $TMP/stunnel.log
[redis]
accept = 127.0.0.1:$STUN_T
connect = 127.0.0.1:$TWEM_R
cert = $TMP/server.crt
key = $TMP/server.key
STEOF

"$OURS" -c "$TMP/ours.yml" -s "$OURS_S" -a 127.0.0.1 -v 4 -o "$TMP/ours.log" &
OURS_PID=$!; PIDS+=($OURS_PID)
"$TWEM" -c "$TMP/twem.yml" -s "$TWEM_S" -a 127.0.0.1 -v 4 -o "$TMP/twem.log" &
TWEM_PID=$!; PIDS+=($TWEM_PID)
"$STUNNEL" "$TMP/stunnel.conf" >"$TMP/stunnel.out" 2>&1 &
STUN_PID=$!; PIDS+=($STUN_PID)
for p in "$OURS_T" "$TWEM_R" "$STUN_T"; do wait_port "$p"; done

ticks() { # pids... -> utime+stime clock ticks summed
  local t=0 pid f
  for pid in "$@"; do
    f=$(sed 's/^.*) //' "/proc/$pid/stat")
    t=$((t + $(echo "$f" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

# one run: the rps redis-benchmark reports, and the CPU microseconds per request
run() { # port test pids...
  local port=$1 test=$2; shift 2
  local before after rps
  before=$(ticks "$@")
  rps=$(timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" --tls --cacert "$TMP/ca.crt" -n "$N" -c "$C" \
          -r "$R" -P "$P" -t "$test" -q --csv 2>/dev/null \
        | awk -F'","' -v t="$(echo "$test" | tr a-z A-Z)" '{ gsub(/"/, "", $1); gsub(/"/, "", $2); if ($1 == t) print int($2) }' \
        | head -1)
  after=$(ticks "$@")
  echo "$rps $(( (after - before) * 1000000 / HZ ))"
}

echo "ours:      $("$OURS" -V 2>&1 | head -1) ($OURS), listen_tls"
echo "reference: $("$STUNNEL" -version 2>&1 | grep -m1 '^stunnel' | tr -s ' ') in front of $("$TWEM" -V 2>&1 | head -1)"
echo "backends:  4 x redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (plain)"
echo "load:      redis-benchmark --tls -n $N -c $C -r $R -P $P (one run each, ours first)"
echo "cpu:       utime+stime from /proc/<pid>/stat around each run; clock tick $HZ Hz"
echo
printf '%-10s %12s %12s %8s %16s %16s %10s\n' workload "ours rps" "stunnel rps" ratio "ours us/req" "stunnel+nc us/req" "cpu ratio"
for test in set get; do
  read -r o_rps o_us <<< "$(run "$OURS_T" "$test" "$OURS_PID")"
  read -r s_rps s_us <<< "$(run "$STUN_T" "$test" "$STUN_PID" "$TWEM_PID")"
  "$PY" - "$test" "$N" "$o_rps" "$o_us" "$s_rps" "$s_us" <<'PYEOF'
import sys
test, n, o_rps, o_us, s_rps, s_us = sys.argv[1], *map(int, sys.argv[2:])
o = o_us / n
s = s_us / n
print("%-10s %12d %12d %8.2f %16.3f %16.3f %10.2f" % (test.upper(), o_rps, s_rps,
      o_rps / s_rps if s_rps else 0, o, s, o / s if s else 0))
PYEOF
done
