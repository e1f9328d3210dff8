#!/usr/bin/env bash
# Demo: the proxy in front of 2 redis-servers and 2 memcacheds, per conf/nutcracker.yml.
#
#   scripts/demo.sh                                # builds ./nutcracker if needed
#   NUTCRACKER=/usr/sbin/nutcracker scripts/demo.sh   # the same with Debian's twemproxy
#
# Starts the backends that are not already running (127.0.0.1:22201, 22202 redis;
# 22211, 22212 memcached), runs the proxy in the foreground, and on Ctrl-C stops
# the proxy and whatever this script started, by pid.
set -euo pipefail

cd "$(dirname "$0")/.."

CONF=conf/nutcracker.yml
NUTCRACKER=${NUTCRACKER:-./nutcracker}
STATS_PORT=${STATS_PORT:-22222}
REDIS_PORTS=(22201 22202)
MEMCACHED_PORTS=(22211 22212)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/nutcracker-demo.XXXXXX")
STARTED=()   # pids of what this script started
PROXY=""

stop_all() {
  trap - INT TERM EXIT
  local pid
  echo
  echo "demo: stopping"
  for pid in $PROXY "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in $PROXY "${STARTED[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_listening() { # port what
  for _ in $(seq 1 100); do
    listening "$1" && return 0
    sleep 0.05
  done
  echo "demo: $2 did not start on port $1 (log: $RUN)" >&2
  return 1
}

scripts/install-deps.sh demo

if [ "$NUTCRACKER" = ./nutcracker ]; then
  echo "demo: make"
  make -s nutcracker
fi
[ -x "$NUTCRACKER" ] || { echo "demo: $NUTCRACKER is not executable" >&2; exit 1; }

for p in "${REDIS_PORTS[@]}"; do
  if listening "$p"; then
    echo "demo: something already listens on 127.0.0.1:$p, using it as the redis backend"
    continue
  fi
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$RUN" >"$RUN/redis-$p.log" 2>&1 &
  STARTED+=($!)
  wait_listening "$p" redis-server
  echo "demo: started redis-server on 127.0.0.1:$p (pid $!)"
done

MC_USER=()
[ "$(id -u)" -eq 0 ] && MC_USER=(-u root)
for p in "${MEMCACHED_PORTS[@]}"; do
  if listening "$p"; then
    echo "demo: something already listens on 127.0.0.1:$p, using it as the memcached backend"
    continue
  fi
  memcached -l 127.0.0.1 -p "$p" -U 0 -m 64 "${MC_USER[@]}" >"$RUN/memcached-$p.log" 2>&1 &
  STARTED+=($!)
  wait_listening "$p" memcached
  echo "demo: started memcached on 127.0.0.1:$p (pid $!)"
done

"$NUTCRACKER" -c "$CONF" -s "$STATS_PORT" -a 127.0.0.1 -v 5 &
PROXY=$!
wait_listening 22121 nutcracker
wait_listening 22122 nutcracker

cat <<EOF

nutcracker is running (pid $PROXY) with $CONF:
  redis pool     127.0.0.1:22121  ->  127.0.0.1:22201, 127.0.0.1:22202
  memcache pool  127.0.0.1:22122  ->  127.0.0.1:22211, 127.0.0.1:22212
  stats          127.0.0.1:$STATS_PORT

Try it from another terminal:
  redis-cli -p 22121 set foo bar
  redis-cli -p 22121 get foo
  redis-cli -p 22121 mset a 1 b 2 c 3 && redis-cli -p 22121 mget a b c
  redis-cli -p 22201 keys '*'; redis-cli -p 22202 keys '*'     # where the keys went
  printf 'set k 0 0 5\r\nhello\r\nget k\r\n' | socat - TCP:127.0.0.1:22122
  socat - TCP:127.0.0.1:$STATS_PORT                            # stats as JSON

Ctrl-C stops the proxy and the backends this script started.
EOF

set +e
wait "$PROXY"
rc=$?
set -e
PROXY=""
echo "demo: nutcracker exited with status $rc"
exit "$rc"
