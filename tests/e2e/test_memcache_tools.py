"""libmemcached's command line tools (Debian's libmemcached-tools) through the proxy,
against three real memcached servers: they check the server version, read stats and
dump keys, so they see what a memcached client library expects of the proxy.

memcached runs with `-o no_lru_maintainer` here so that `stats cachedump` (what
memcdump asks) lists items as soon as they are stored.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import HOST, TWEMPROXY, mc_pool, placement, spread_keys

pytestmark = [
    pytest.mark.skipif(TWEMPROXY, reason="twemproxy answers neither version nor stats"),
    pytest.mark.skipif(shutil.which("memcstat") is None,
                       reason="libmemcached-tools is not installed (scripts/install-deps.sh test)"),
]

KEYS = spread_keys("tool", 30)


@pytest.fixture(scope="module")
def pool(menv):
    servers = menv.memcacheds(3, args=["-o", "no_lru_maintainer"])
    px = menv.proxy({"alpha": mc_pool(servers)})
    return servers, px


@pytest.fixture
def filled(pool):
    servers, px = pool
    for s in servers:
        assert s.mc().cmd(b"flush_all") == b"OK"
    c = px.mc()
    for k in KEYS:
        assert c.cmd(b"set %s 0 0 %d" % (k.encode(), len(k)), k.encode()) == b"STORED"
    where = placement(KEYS, servers)
    assert len({s.port for s in where.values()}) == 3, "the keys must cover every server"
    return servers, px


def tool(px, name, *args, check=True):
    r = subprocess.run([name, "--servers=%s:%d" % (HOST, px.port())] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if check:
        assert r.returncode == 0, (name, r.returncode, r.stderr.decode(errors="replace"))
    return r


def memcstat(px):
    """memcstat's figures, name -> value."""
    out = tool(px, "memcstat").stdout.decode()
    return dict(re.findall(r"^\s+(\w+): (.*)$", out, re.M))


def test_memcping(pool):
    servers, px = pool
    tool(px, "memcping")


def test_memcstat_shows_the_pool_summed(filled):
    servers, px = filled
    st = memcstat(px)
    assert int(st["curr_items"]) == len(KEYS)  # every server's items
    assert int(st["total_items"]) >= len(KEYS)
    direct = [s.mc() for s in servers]
    assert st["version"] == direct[0].cmd(b"version").split(b" ", 1)[1].decode()
    assert int(st["pid"]) in {s.proc.pid for s in servers}  # one server's fact, not a sum
    assert st["threads"] == "1"
    assert int(st["limit_maxbytes"]) == 3 * 64 * 1024 * 1024  # capacity adds up


def test_memcdump_lists_every_server(filled):
    servers, px = filled
    out = tool(px, "memcdump").stdout.decode().split()
    assert sorted(out) == sorted(KEYS)


def test_memccp_and_memccat(pool, tmp_path):
    servers, px = pool
    path = tmp_path / "tool-file.txt"
    path.write_bytes(b"copied through the proxy\n")
    tool(px, "memccp", str(path))
    key = os.path.basename(str(path))
    out = tool(px, "memccat", key).stdout
    home = placement([key], servers)[key]
    direct = subprocess.run(["memccat", "--servers=%s" % home.addr, key], stdout=subprocess.PIPE,
                            timeout=30).stdout
    assert out == direct and out.startswith(b"copied through the proxy\n")


def test_memcexist_memctouch_memcrm_memcflush(filled):
    servers, px = filled
    tool(px, "memcexist", KEYS[0])
    assert tool(px, "memcexist", "tool:nope", check=False).returncode != 0
    tool(px, "memctouch", "--expire=100", KEYS[1])
    tool(px, "memcrm", KEYS[2])
    assert tool(px, "memcexist", KEYS[2], check=False).returncode != 0
    tool(px, "memcflush")
    items, _ = px.mc().retrieval(b"get " + " ".join(KEYS).encode())
    assert items == []


def stats_of(conn, sub=b""):
    conn.send(b"stats" + (b" " + sub if sub else b"") + b"\r\n")
    out = []
    while True:
        line = conn.readline()
        if line == b"END":
            return out
        out.append(line)


def test_stats_sums_numbers_and_keeps_one_servers_facts(filled):
    servers, px = filled
    for _ in range(3):  # misses on every server
        px.mc().retrieval(b"get " + b" ".join(b"miss:%d" % i for i in range(20)))
    proxied = dict(l.split(b" ", 2)[1:] for l in stats_of(px.mc()))
    direct = [dict(l.split(b" ", 2)[1:] for l in stats_of(s.mc())) for s in servers]
    assert [l.split(b" ")[1] for l in stats_of(px.mc())] == list(direct[0])  # names, in order
    for name in (b"curr_items", b"total_items", b"cmd_set", b"limit_maxbytes"):
        assert int(proxied[name]) == sum(int(d[name]) for d in direct), name
    assert int(proxied[b"get_misses"]) >= 60
    for name in (b"pid", b"version", b"pointer_size", b"threads", b"libevent"):
        assert proxied[name] in {d[name] for d in direct}, name


def test_stats_reset_and_detail_reach_every_server(filled):
    servers, px = filled
    c = px.mc()
    c.retrieval(b"get " + " ".join(KEYS).encode())
    assert c.cmd(b"stats reset") == b"RESET"
    for s in servers:
        st = dict(l.split(b" ", 2)[1:] for l in stats_of(s.mc()))
        assert st[b"get_hits"] == b"0"
    try:
        assert c.cmd(b"stats detail on") == b"OK"
        for s in servers:
            st = dict(l.split(b" ", 2)[1:] for l in stats_of(s.mc(), b"settings"))
            assert st[b"detail_enabled"] == b"yes"
    finally:
        assert c.cmd(b"stats detail off") == b"OK"
    assert c.cmd(b"stats detail") == b"CLIENT_ERROR usage: stats detail on|off|dump"
    assert c.cmd(b"stats bogus") == b"ERROR"
    # one server's view: a subcommand other than reset/detail/cachedump
    settings = stats_of(c, b"settings")
    assert any(l.startswith(b"STAT maxconns ") for l in settings)


def test_version_skips_a_server_that_is_down(env):
    """version goes to any live server: not to one whose connects are refused
    (no auto_eject_hosts, so it stays in the pool), whichever order they sort in.
    Only a first request, before any connect has failed or succeeded, may still
    find the dead one (its connect fails after the request was queued)."""
    from conftest import free_port
    live = env.memcached()
    want = live.mc().cmd(b"version")
    for dead in ("127.0.0.1:%d" % free_port(), "127.0.0.2:%d" % free_port()):
        px = env.proxy({"a": mc_pool([dead, live])})
        answers = []
        for _ in range(6):
            c = px.mc()
            answers.append(c.cmd(b"version"))
            c.close()
        assert answers[1:] == [want] * 5, answers
        assert answers[0] in (want, b"SERVER_ERROR Connection refused"), answers
        px.stop()


def test_stats_leave_out_an_ejected_server_and_flush_all_does_not(env):
    """A server ejected (auto_eject_hosts) made every `stats` fail for as long as
    it was down: monitoring through the proxy went blank while the pool served.
    The stats commands now describe the servers that serve; `flush_all` must
    reach every server, so it still says that one did not get it."""
    from conftest import wait_until
    from liveness_util import crash
    servers = env.memcacheds(3)
    px = env.proxy({"a": mc_pool(servers, auto_eject_hosts=True, server_failure_limit=1,
                                 server_retry_timeout=30000)})
    c = px.mc()
    for k in KEYS:
        assert c.cmd(b"set %s 0 0 1" % k.encode(), b"v") == b"STORED"
    where = placement(KEYS, servers)
    victim = servers[2]
    on_victim = next(k for k in KEYS if where[k] is victim)
    crash(victim)
    assert c.cmd(b"get " + on_victim.encode()).startswith(b"SERVER_ERROR")  # the failure that ejects it
    wait_until(lambda: px.stats()["a"][victim.addr]["server_ejected_at"] > 0, "the server ejected")
    live = [dict(l.split(b" ", 2)[1:] for l in stats_of(s.mc())) for s in servers[:2]]
    proxied = dict(l.split(b" ", 2)[1:] for l in stats_of(c))
    assert int(proxied[b"curr_items"]) == sum(int(d[b"curr_items"]) for d in live)
    assert c.cmd(b"stats reset") == b"RESET"
    assert c.cmd(b"flush_all").startswith(b"SERVER_ERROR")


# --------------------------------------------------------------------------- pylibmc

def _pylibmc_scenario(port, prefix):
    """pylibmc (libmemcached) with its defaults: the text protocol, modula
    placement of its own over the one address it is given."""
    import pylibmc
    c = pylibmc.Client(["%s:%d" % (HOST, port)])
    keys = ["%s:%d" % (prefix, i) for i in range(40)]
    out = []
    for k in keys:
        out.append(c.set(k, k.encode()))
    out.append(sorted(c.get_multi(keys + [prefix + ":none"]).items()))
    out.append(c.get(keys[0]))
    out.append(c.add(keys[1], b"x"))
    out.append(c.add(prefix + ":new", b"n"))
    out.append(c.replace(keys[2], b"r"))
    out.append(c.replace(prefix + ":absent", b"r"))
    out.append(c.append(keys[3], b"+a"))
    out.append(c.prepend(keys[3], b"p+"))
    out.append(c.get(keys[3]))
    out.append(c.set(prefix + ":n", 10))
    out.append(c.incr(prefix + ":n", 5))
    out.append(c.decr(prefix + ":n", 20))
    out.append(c.touch(keys[4], 100))
    out.append(c.delete(keys[5]))
    out.append(c.delete(keys[5]))
    out.append(c.get(keys[5]))
    out.append(c.set_multi({keys[6]: b"m6", keys[7]: b"m7"}))
    out.append(c.delete_multi([keys[8], keys[9], prefix + ":none"]))
    out.append(sorted(c.get_multi(keys[6:10]).items()))
    big = bytes(range(256)) * 3000
    out.append(c.set(prefix + ":big", big))
    out.append(c.get(prefix + ":big") == big)
    return out


def test_pylibmc_defaults_same_as_direct(pool, env):
    """pylibmc, the libmemcached client, with its default behaviours gets through
    the proxy over three servers what it gets from one memcached directly."""
    servers, px = pool
    direct = env.memcached()
    assert _pylibmc_scenario(px.port(), "plm") == _pylibmc_scenario(direct.port, "plm")


def test_pylibmc_binary_get_is_an_error_not_a_miss(pool, env):
    """With binary=True, libmemcached sends a get as GETK and reads an error
    response to it as a miss: the proxy's binary "not supported" made every get a
    miss that no application would notice (h40). The close alone makes it a
    connection failure, as twemproxy's close does; directly it is a hit."""
    import pylibmc
    servers, px = pool
    direct = env.memcached()
    d = pylibmc.Client(["%s:%d" % (HOST, direct.port)], binary=True)
    assert d.set("bk", b"v") and d.get("bk") == b"v"
    assert px.mc().cmd(b"set bk 0 0 1", b"v") == b"STORED"
    c = pylibmc.Client(["%s:%d" % (HOST, px.port())], binary=True)
    with pytest.raises(pylibmc.Error):
        c.get("bk")
