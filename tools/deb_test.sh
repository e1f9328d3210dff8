#!/usr/bin/env bash
# make deb-test: build the .deb, then in a fresh Debian 12 chroot (debootstrap,
# cached in $DEB_TEST_CACHE) install Debian's own nutcracker with an admin's
# configuration, install ours over it the way an operator would (dpkg -i, no
# terminal: a conffile prompt would fail it), check what the package promises,
# run the service's ExecStart line as the nutcracker user against a redis, and
# upgrade the package again while it runs (postinst: -k upgrade, no restart).
# Needs root, debootstrap and the Debian archive; slow (minutes), not in make test.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${DEB_TEST_CACHE:-/var/cache/nutcracker-deb-test}
OUT=build/deb # where make deb leaves it
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }

echo "== build"
LOG=$(mktemp /tmp/deb-build.XXXXXX)
make deb >"$LOG" 2>&1 || { tail -30 "$LOG"; fail "make deb (log: $LOG)"; }
version=$(dpkg-parsechangelog -S Version)
deb=$(ls "$OUT"/nutcracker_"$version"_*.deb)

echo "== fresh Debian 12 root"
mkdir -p "$CACHE"
if [ ! -f "$CACHE/base.tgz" ]; then
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" >"$CACHE/debootstrap.log" 2>&1 ||
        fail "debootstrap: $(tail -2 "$CACHE/debootstrap.log")"
    tar -C "$CACHE/rootfs" -czf "$CACHE/base.tgz" . && rm -rf "$CACHE/rootfs"
fi
ROOT=$(mktemp -d /tmp/deb-test.XXXXXX)
mounted=()
cleanup() {
    for pid in $(cat "$ROOT/tmp/pids" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
    rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
tar -C "$ROOT" -xzf "$CACHE/base.tgz"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n' >"$ROOT/etc/hosts"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$ROOT/$m" && mounted+=("$ROOT/$m"); done
# no service starts by itself in the chroot; the test starts what it runs
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
cp "$deb" "$ROOT/tmp/"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 bash -ec "$1"; }

echo "== Debian's nutcracker, configured by an admin"
in_root "apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends nutcracker redis-server >/dev/null"
in_root "dpkg-query -W -f='\${Version}\n' nutcracker" | grep -q '^0.5.0+dfsg' || fail "Debian's nutcracker not installed"
cat >"$ROOT/etc/nutcracker/nutcracker.yml" <<'EOF'
alpha:
  listen: 127.0.0.1:22121
  redis: true
  servers:
   - 127.0.0.1:6379:1
EOF
echo 'DAEMON_OPTS="-v 6"' >"$ROOT/etc/default/nutcracker"
conf_sum=$(md5sum <"$ROOT/etc/nutcracker/nutcracker.yml")
default_sum=$(md5sum <"$ROOT/etc/default/nutcracker")

echo "== ours over it (dpkg -i, no terminal)"
in_root "dpkg -i /tmp/$(basename "$deb") </dev/null" || fail "dpkg -i"
in_root "dpkg-query -W -f='\${Version}\n' nutcracker" | grep -qx "$version" || fail "version is not $version"
in_root "/usr/sbin/nutcracker -V 2>&1" | grep -q '^This is nutcracker-' || fail "nutcracker -V"
[ "$(md5sum <"$ROOT/etc/nutcracker/nutcracker.yml")" = "$conf_sum" ] || fail "the admin's nutcracker.yml changed"
[ "$(md5sum <"$ROOT/etc/default/nutcracker")" = "$default_sum" ] || fail "the admin's /etc/default changed"
in_root "getent passwd nutcracker" | grep -q ':/nonexistent:' || fail "no nutcracker system user"
[ "$(in_root 'stat -c %U:%G:%a /var/log/nutcracker')" = "nutcracker:adm:2755" ] || fail "/var/log/nutcracker owner/mode"
for f in /usr/share/man/man8/nutcracker.8.gz /usr/share/man/man5/nutcracker.yml.5.gz \
    /usr/share/doc/nutcracker/examples/nutcracker.yml /lib/systemd/system/nutcracker.service \
    /etc/logrotate.d/nutcracker; do
    [ -e "$ROOT$f" ] || fail "$f is missing"
done
[ ! -e "$ROOT/etc/init.d/nutcracker" ] || fail "Debian's init script (for its binary's defaults) is still there"
in_root "/usr/sbin/nutcracker -t -c /usr/share/doc/nutcracker/examples/nutcracker.yml" >/dev/null 2>&1 ||
    fail "the example configuration does not pass -t"
echo "package files:"
in_root "dpkg -L nutcracker" | sed 's/^/  /'

echo "== run it as the unit does"
unit=$ROOT/lib/systemd/system/nutcracker.service
start=$(sed -n 's/^ExecStart=//p' "$unit")
reload_check=$(sed -n 's/^ExecReload=\(.*-t .*\)/\1/p' "$unit")
# shellcheck disable=SC1091
opts=$(. "$ROOT/etc/default/nutcracker"; echo "$DAEMON_OPTS")
cmd=${start//\$DAEMON_OPTS/$opts}
in_root "mkdir -p /run/nutcracker && chown nutcracker:nutcracker /run/nutcracker
redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save '' >/dev/null
for i in \$(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p 6379 info server | grep -o 'process_id:[0-9]*' | cut -d: -f2 >>/tmp/pids
${reload_check//\$DAEMON_OPTS/$opts} >/dev/null 2>&1
setpriv --reuid=nutcracker --regid=nutcracker --init-groups --inh-caps=-all $cmd </dev/null >/dev/null 2>&1 &
echo \$! >>/tmp/pids
for i in \$(seq 50); do [ \"\$(redis-cli -p 22121 ping 2>/dev/null)\" = PONG ] && break; sleep 0.1; done
[ \"\$(redis-cli -p 22121 set deb-test ok)\" = OK ]
[ \"\$(redis-cli -p 22121 get deb-test)\" = ok ]
exec 3<>/dev/tcp/127.0.0.1/22223; printf 'GET /status.json HTTP/1.0\r\n\r\n' >&3
grep -q '\"name\":\"alpha\"' <&3" || fail "the service does not serve (log: $(tail -5 "$ROOT/var/log/nutcracker/nutcracker.log"))"
old=$(cat "$ROOT/run/nutcracker/nutcracker.pid")
echo "serving as pid $old; log in /var/log/nutcracker: $(wc -l <"$ROOT/var/log/nutcracker/nutcracker.log") lines"

echo "== the package again, while it runs: postinst upgrades the binary in place"
in_root "dpkg -i /tmp/$(basename "$deb") </dev/null" >/dev/null || fail "dpkg -i (upgrade)"
for _ in $(seq 100); do
    new=$(cat "$ROOT/run/nutcracker/nutcracker.pid")
    [ "$new" != "$old" ] && ! kill -0 "$old" 2>/dev/null && break
    sleep 0.1
done
[ "$new" != "$old" ] || fail "no binary upgrade (pid still $old)"
echo "$new" >>"$ROOT/tmp/pids"
in_root "[ \"\$(redis-cli -p 22121 get deb-test)\" = ok ]" || fail "not serving after the upgrade"
grep -q "binary upgrade: pid $new serves" "$ROOT/var/log/nutcracker/nutcracker.log" || fail "no upgrade in the log"
echo "upgraded: pid $old -> $new, still serving"
kill -TERM "$new"
for _ in $(seq 50); do kill -0 "$new" 2>/dev/null || break; sleep 0.1; done
kill -0 "$new" 2>/dev/null && fail "SIGTERM did not stop it"
echo "deb-test: PASS ($deb over Debian's nutcracker)"
