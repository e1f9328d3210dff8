"""Servers named by a host name follow the name, as twemproxy does (it looks the
name up for every new server connection): when the name moves to another address
(a DNS failover, a restarted pod), the next connection goes there; when the name
stops resolving, the last address is kept.

The proxy runs in a mount namespace of its own over a private /etc/hosts that the
test rewrites in place (a bind mount follows the file's inode), so nothing outside
it sees the name. Needs root and util-linux's unshare."""

import os
import shutil
import subprocess
import time

import pytest

import conftest
from conftest import HOST, Proxy, RespError, free_port, redis_pool, wait_port, wait_until, yaml_conf

NAME = "nc-test-backend"


def can_unshare():
    """Whether a file can be bind-mounted over /etc/hosts in a new mount namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or not os.path.exists("/etc/hosts"):
        return False
    r = subprocess.run(["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts', "/etc/hosts"],
                       capture_output=True)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not can_unshare(), reason="needs root and unshare --mount")


def write_hosts(path, ip=None):
    with open(path, "a+") as f:  # never replaced: the bind mount follows this inode
        f.seek(0)
        f.truncate()
        f.write("127.0.0.1 localhost\n" + ("%s %s\n" % (ip, NAME) if ip else ""))


def proxy_over_hosts(env, pools, hosts):
    """The proxy started in a mount namespace where /etc/hosts is `hosts`."""
    port = free_port()
    pools["alpha"]["listen"] = "%s:%d" % (HOST, port)
    conf = env.write_conf(yaml_conf(pools))
    log, sport = env._path("nutcracker.log"), free_port()
    argv = [conftest.NUTCRACKER_BIN] + (["--event-backend=" + conftest.EVENT_BACKEND] if conftest.EVENT_BACKEND
                                         else [])
    argv += ["-c", conf, "-s", str(sport), "-a", HOST, "-i", "100", "-v", "5", "-o", log]
    proc, out = env.spawn(["unshare", "--mount", "sh", "-c",
                           'mount --bind "$0" /etc/hosts && exec "$@"', hosts] + argv, "nutcracker")
    env.proxy_outputs.append(out)  # checked for sanitizer reports like the others
    px = Proxy(proc, conf, log, out, sport, {"alpha": ("tcp", port)})
    assert wait_port(port, proc), px.log_tail()
    return px


def redis_on(env, port, ip):
    """A redis-server listening on ip:port only (a loopback address of its own)."""
    s = env.redis(port=port, args=["--bind", ip])  # the last --bind is the one kept
    import redis
    c = redis.Redis(host=ip, port=port, socket_timeout=5)
    wait_until(lambda: c.ping(), "redis on %s:%d" % (ip, port))
    return s, c


def log_text(px):
    with open(px.log) as f:
        return f.read()


def test_a_server_named_by_host_follows_its_name_to_a_new_address(env, tmp_path):
    hosts = str(tmp_path / "hosts")
    write_hosts(hosts, "127.0.0.1")
    port = free_port()
    old, old_c = redis_on(env, port, "127.0.0.1")
    new, new_c = redis_on(env, port, "127.0.0.2")
    old_c.set("where", "old")
    new_c.set("where", "new")
    px = proxy_over_hosts(env, {"alpha": redis_pool(["%s:%d:1 app" % (NAME, port)])}, hosts)
    c = px.resp()
    assert c.call("GET", "where") == b"old"
    # the name moves, and the old address dies: the next connection goes to the new one
    write_hosts(hosts, "127.0.0.2")
    old.stop()
    got = []

    def moved():
        got.append(c.call("GET", "where"))
        return got[-1] == b"new"
    wait_until(moved, "the GET to reach the name's new address", timeout=5)
    # until the next lookup (at most a second apart), the old address was refused
    assert all(g == b"new" or isinstance(g, RespError) for g in got), got
    assert "'%s' resolves to 127.0.0.2:%d (was 127.0.0.1:%d)" % (NAME, port, port) in log_text(px)
    # the name stops resolving: the last address is kept, and the log says so once
    write_hosts(hosts, None)
    time.sleep(1.1)  # past the next lookup's time
    new_c.client_kill_filter(_type="normal", skipme=True)
    wait_until(lambda: c.call("GET", "where") == b"new", "the GET to be served at the last address")
    for _ in range(3):
        time.sleep(0.4)
        new_c.client_kill_filter(_type="normal", skipme=True)
        wait_until(lambda: c.call("GET", "where") == b"new", "the GET to be served at the last address")
    assert log_text(px).count("'%s' does not resolve" % NAME) == 1, px.log_tail()
    assert "its last address is used" in log_text(px)


def sentinel_on(env, port, ip, group, master):
    """A redis-sentinel listening on ip:port only, watching master as group."""
    conf = env._path("sentinel-%s-%d.conf" % (ip, port))
    with open(conf, "w") as f:
        f.write("port %d\nbind %s\ndaemonize no\ndir %s\nsentinel monitor %s %s %d 1\n"
                % (port, ip, env.tmp, group, HOST, master.port))
    proc, out = env.spawn(["redis-sentinel", conf], "sentinel-%s-%d" % (ip, port))
    assert wait_port(port, proc, host=ip), out
    return proc


def test_a_sentinel_named_by_host_follows_its_name_to_a_new_address(env, tmp_path):
    # two sentinels that do not know each other name different masters for the
    # group: which one the proxy asks shows in which master it uses
    hosts = str(tmp_path / "hosts")
    write_hosts(hosts, "127.0.0.1")
    r1, r2 = env.redis(), env.redis()
    r1.client().set("who", "r1")
    r2.client().set("who", "r2")
    port = free_port()
    old = sentinel_on(env, port, "127.0.0.1", "g1", r1)
    sentinel_on(env, port, "127.0.0.2", "g1", r2)
    pool = {"redis": True, "sentinel_heartbeat": 200, "groups": ["g1"],
            "sentinels": ["%s:%d" % (NAME, port)]}
    px = proxy_over_hosts(env, {"alpha": pool}, hosts)
    c = px.resp()
    wait_until(lambda: c.call("GET", "who") == b"r1", "the proxy to use the first sentinel's master")
    # the name moves, and the sentinel at the old address stops: the proxy
    # connects to the name's new address, and uses what that sentinel says
    write_hosts(hosts, "127.0.0.2")
    old.kill()
    wait_until(lambda: c.call("GET", "who") == b"r2", "the proxy to ask the sentinel at the new address",
               timeout=10)
    assert "sentinel '%s:%d' resolves to 127.0.0.2:%d (was 127.0.0.1:%d)" % (NAME, port, port, port) \
        in log_text(px), px.log_tail()
