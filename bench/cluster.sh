#!/usr/bin/env bash
# bench/cluster.sh: the cluster column. redis-benchmark against
#   - our proxy in front of a 3-master Redis Cluster (redis_cluster: true),
#   - the same proxy in front of 3 plain redis-servers (a static pool),
#   - the cluster directly, with redis-benchmark --cluster (cluster-aware).
# Usage: bench/cluster.sh [requests] [pipeline] [clients]   (bench/run.sh may call it)
# Env: NUTCRACKER_BIN (default ./nutcracker). Prints one table; stops what it started.
set -euo pipefail
N=${1:-200000}
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

CL=() ST=()
for i in 1 2 3; do
    p=$(port); mkdir -p "$DIR/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$DIR/$p/nodes.conf" \
        --save "" --appendonly no --dir "$DIR/$p" --daemonize no >"$DIR/$p.log" 2>&1 & PIDS+=($!)
    CL+=("$p")
    q=$(port)
    redis-server --port "$q" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$DIR/$q.log" 2>&1 & PIDS+=($!)
    ST+=("$q")
done
for p in "${CL[@]}" "${ST[@]}"; do up "$p"; done
redis-cli --cluster create "${CL[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1
for _ in $(seq 100); do redis-cli -p "${CL[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done

PC=$(port) PS=$(port) SP=$(port)
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
YML
"$BIN" -c "$DIR/nc.yml" -s "$SP" -v 3 >"$DIR/nc.log" 2>&1 & PIDS+=($!)
up "$PC"; up "$PS"
for _ in $(seq 100); do redis-cli -p "$PC" set warm 1 | grep -q OK && break; sleep 0.05; done

rps() { # redis-benchmark args... -> "set_rps get_rps"
    redis-benchmark "$@" -n "$N" -P "$P" -c "$C" -t set,get -r 100000 -q 2>/dev/null | tr '\r' '\n' |
        awk '/^SET: [0-9]/{s=$2} /^GET: [0-9]/{g=$2} END{printf "%s %s", s, g}'
}
read -r cs cg <<<"$(rps -p "$PC")"
read -r ss sg <<<"$(rps -p "$PS")"
read -r ds dg <<<"$(rps -p "${CL[0]}" --cluster)"
printf '%-44s %12s %12s\n' "requests/s (n=$N -P $P -c $C)" SET GET
printf '%-44s %12s %12s\n' "nutcracker, redis_cluster pool (3 masters)" "$cs" "$cg"
printf '%-44s %12s %12s\n' "nutcracker, static pool (3 servers)" "$ss" "$sg"
printf '%-44s %12s %12s\n' "redis-benchmark --cluster, direct" "$ds" "$dg"
