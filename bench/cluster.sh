#!/usr/bin/env bash
# bench/cluster.sh: the cluster column. redis-benchmark against
#   - our proxy in front of a 3-master Redis Cluster (redis_cluster: true),
#   - the same proxy in front of 3 plain redis-servers (a static pool),
#   - the same proxy in front of 3 cluster-mode redis-servers that are each a
#     cluster of one node owning every slot (a static pool): a redis-server in
#     cluster mode does more per command than a plain one, so this row tells
#     the proxy's share of the difference from the servers' share,
#   - the cluster directly, with redis-benchmark --cluster (cluster-aware).
# ROUNDS rounds (default 3), the targets in turn; each cell is the median of
# the rounds [min-max], and the proxy's CPU per request (utime+stime from
# /proc, microseconds) is given beside its throughput.
# Usage: bench/cluster.sh [requests] [pipeline] [clients]
# Env: NUTCRACKER_BIN (default ./nutcracker), ROUNDS. Stops what it started.
set -euo pipefail
N=${1:-1000000}
P=${2:-16}
C=${3:-50}
BIN=${NUTCRACKER_BIN:-$(cd "$(dirname "$0")/.." && pwd)/nutcracker}
DIR=$(mktemp -d /tmp/nc-bench-cluster.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

port() { # a free port whose +10000 (cluster bus) is free too
    python3 -c 'import random,socket
for _ in range(500):
    p=random.randrange(13000,22000)
    ok=True
    for q in (p,p+10000):
        s=socket.socket()
        try: s.bind(("127.0.0.1",q))
        except OSError: ok=False
        finally: s.close()
    if ok: print(p); break'
}
up() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

CL=() ST=() SC=()
for i in 1 2 3; do
    p=$(port); mkdir -p "$DIR/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$DIR/$p/nodes.conf" \
        --save "" --appendonly no --dir "$DIR/$p" --daemonize no >"$DIR/$p.log" 2>&1 & PIDS+=($!)
    SC+=("$p")
    p=$(port); mkdir -p "$DIR/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$DIR/$p/nodes.conf" \
        --save "" --appendonly no --dir "$DIR/$p" --daemonize no >"$DIR/$p.log" 2>&1 & PIDS+=($!)
    CL+=("$p")
    q=$(port)
    redis-server --port "$q" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$DIR/$q.log" 2>&1 & PIDS+=($!)
    ST+=("$q")
done
for p in "${CL[@]}" "${ST[@]}" "${SC[@]}"; do up "$p"; done
for p in "${SC[@]}"; do redis-cli -p "$p" cluster addslotsrange 0 16383 >/dev/null; done
for p in "${SC[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done
done
redis-cli --cluster create "${CL[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1
for _ in $(seq 100); do redis-cli -p "${CL[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done

PC=$(port) PS=$(port) PM=$(port) SP=$(port)
cat >"$DIR/nc.yml" <<YML
cluster:
  listen: 127.0.0.1:$PC
  redis_cluster: true
  servers:
   - 127.0.0.1:${CL[0]}
static:
  listen: 127.0.0.1:$PS
  redis: true
  servers:
   - 127.0.0.1:${ST[0]}:1
   - 127.0.0.1:${ST[1]}:1
   - 127.0.0.1:${ST[2]}:1
static_cluster_mode:
  listen: 127.0.0.1:$PM
  redis: true
  servers:
   - 127.0.0.1:${SC[0]}:1
   - 127.0.0.1:${SC[1]}:1
   - 127.0.0.1:${SC[2]}:1
YML
"$BIN" -c "$DIR/nc.yml" -s "$SP" -v 3 >"$DIR/nc.log" 2>&1 & PIDS+=($!)
NCPID=${PIDS[-1]}
up "$PC"; up "$PS"; up "$PM"
for _ in $(seq 100); do redis-cli -p "$PC" set warm 1 | grep -q OK && break; sleep 0.05; done

ticks() { awk '{print $14 + $15}' "/proc/$NCPID/stat"; }
HZ=$(getconf CLK_TCK)
run() { # name redis-benchmark-args... -> appends "name test rps us_per_req" lines to $DIR/res
    local name=$1 t0 t1
    shift
    for t in set get; do
        t0=$(ticks)
        r=$(redis-benchmark "$@" -n "$N" -P "$P" -c "$C" -t "$t" -r 100000 -q 2>/dev/null | tr '\r' '\n' |
            awk '/^(SET|GET): [0-9]/{v=$2} END{print v}')
        t1=$(ticks)
        echo "$name $t $r $(awk -v a="$t0" -v b="$t1" -v n="$N" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)*1e6/hz/n}')" >>"$DIR/res"
    done
}
ROUNDS=${ROUNDS:-3}
for r in $(seq "$ROUNDS"); do
    run cluster -p "$PC"
    run static -p "$PS"
    run static_cm -p "$PM"
    run direct -p "${CL[0]}" --cluster
done
python3 - "$DIR/res" "$N" "$P" "$C" "$ROUNDS" <<'PY'
import statistics, sys
res, n, p, c, rounds = sys.argv[1:]
rows = {}
for line in open(res):
    name, t, rps, us = line.split()
    rows.setdefault((name, t), []).append((float(rps or 0), float(us)))
def cell(v, fmt):
    return "%s [%s-%s]" % (fmt % statistics.median(v), fmt % min(v), fmt % max(v))
labels = [("cluster", "nutcracker, redis_cluster pool (3 masters)"),
          ("static", "nutcracker, static pool (3 plain servers)"),
          ("static_cm", "nutcracker, static pool (3 cluster-mode servers)"),
          ("direct", "redis-benchmark --cluster, direct")]
print("requests/s and the proxy's CPU per request in us: median of %s rounds [min-max]; "
      "n=%s -P %s -c %s" % (rounds, n, p, c))
print("%-50s %30s %22s %30s %22s" % ("", "SET rps", "SET us/req", "GET rps", "GET us/req"))
for key, label in labels:
    out = []
    for t in ("set", "get"):
        v = rows[(key, t)]
        out.append(cell([x[0] for x in v], "%.0f"))
        out.append(cell([x[1] for x in v], "%.2f") if key != "direct" else "-")
    print("%-50s %30s %22s %30s %22s" % (label, *out))
for base in ("static", "static_cm"):
    for t in ("set", "get"):
        ratios = [a[0] / b[0] for a, b in zip(rows[("cluster", t)], rows[(base, t)]) if b[0]]
        cpu = [a[1] / b[1] for a, b in zip(rows[("cluster", t)], rows[(base, t)]) if b[1]]
        print("cluster / %-9s %s: throughput %s, CPU per request %s" %
              (base, t.upper(), cell(ratios, "%.2f"), cell(cpu, "%.2f")))
PY
