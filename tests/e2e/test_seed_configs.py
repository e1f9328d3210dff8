"""Every configuration example of the seed documents works as it is (issue 7).

tests/fixtures/seeds/*.yml are the examples of shared/seeds/ (each file's header
says which seed and what, if anything, had to be restored).  Each must pass -t,
and each runs against real servers: the addresses of the file (listen,
servers, sentinels, unix paths) are moved to ports and a directory of this run,
nothing else changes; then traffic goes through every pool and every key must
be on exactly one of the pool's servers: the one twemproxy's placement says
(ketama with fnv1a_64 or murmur, or a continuum held by a single server,
which covers every pool of the fixtures).

Backends are shared by the tests of this module, keyed by the address the
fixture gives them: two fixtures naming 127.0.0.1:6380 talk to the same
redis-server, as they would on the machine they were written for.
"""

import glob
import os
import re
import stat
import subprocess

import pytest

import conftest
from conftest import (HOST, NUTCRACKER_BIN, ROOT, TWEMPROXY, VECTORS, Ketama, Mc, Proxy, Resp, RespError,
                      fnv1a_64, free_port, hash_tag_key, spread_keys, wait_port, wait_unix,
                      wait_until)

FIXTURE_DIR = os.path.join(ROOT, "tests", "fixtures", "seeds")
FIXTURES = sorted(glob.glob(os.path.join(FIXTURE_DIR, "*.yml")))
DEBIAN_NUTCRACKER = "/usr/sbin/nutcracker"
# twemproxy-163's own keys (groups, sentinels, sentinel_heartbeat): twemproxy 0.5 refuses them
TWEMPROXY_163 = {"000_f3ec260a3b5c1051_alpha_sentinels.yml"}


def fixture_ids():
    return [os.path.basename(f)[:-len(".yml")] for f in FIXTURES]


def ours_only(path):
    """pytest.param for a fixture, skipped when the binary under test is twemproxy
    and the file uses twemproxy-163's keys."""
    marks = []
    if os.path.basename(path) in TWEMPROXY_163:
        marks = [pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no sentinel keys")]
    return pytest.param(path, marks=marks, id=os.path.basename(path)[:-len(".yml")])


# --------------------------------------------------------------------------- reading a fixture

COMMENT_RE = re.compile(r"(^|\s+)#.*$")
POOL_RE = re.compile(r"^(\S[^:]*):$")
KEY_RE = re.compile(r"^\s+([A-Za-z_]+):\s*(.*)$")
ITEM_RE = re.compile(r"^\s+-\s+(.*)$")


class Pool:
    def __init__(self, name):
        self.name = name
        self.keys = {}  # key -> (line index, value)
        self.lists = {}  # key -> [(line index, item)]

    def get(self, key, default=None):
        return self.keys[key][1] if key in self.keys else default

    @property
    def redis(self):
        # a pool with sentinels is a redis pool without saying so (twemproxy-163)
        return self.get("redis") == "true" or "sentinels" in self.lists


def read_fixture(path):
    """The fixture's lines and its pools, in file order.  The fixtures use the
    plain block style of twemproxy's examples, so a line reader is enough."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    pools, pool, key = {}, None, None
    for i, line in enumerate(lines):
        code = COMMENT_RE.sub("", line).rstrip()
        if not code:
            continue
        m = POOL_RE.match(code)
        if m:
            pool = pools.setdefault(m.group(1), Pool(m.group(1)))
            continue
        m = ITEM_RE.match(code)
        if m:
            pool.lists[key].append((i, m.group(1)))
            continue
        m = KEY_RE.match(code)
        assert m and pool is not None, "%s:%d: not understood: %r" % (path, i + 1, line)
        key = m.group(1)
        if m.group(2):
            pool.keys[key] = (i, m.group(2))
        else:
            pool.lists[key] = []
    return lines, list(pools.values())


def replace_value(lines, i, old, new):
    assert lines[i].count(old) == 1, (lines[i], old)
    lines[i] = lines[i].replace(old, new)


def split_server(entry):
    """'host:port:weight [name]' -> (host:port, weight, name or None)."""
    addr, _, name = entry.partition(" ")
    hostport, weight = addr.rsplit(":", 1)
    return hostport, int(weight), (name.strip() or None)


# --------------------------------------------------------------------------- placement model

def murmur(key):
    """twemproxy's hash_murmur: MurmurHash2 seeded with 0xdeadbeef * length
    (checked against the SPEC's vectors below)."""
    m, n = 0x5BD1E995, len(key)
    h = ((0xDEADBEEF * n) ^ n) & 0xFFFFFFFF
    body = n - n % 4
    for i in range(0, body, 4):
        k = (int.from_bytes(key[i:i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    if n > body:
        for j, b in enumerate(key[body:]):
            h ^= b << (8 * j)
        h = (h * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


# the hashes of the fixtures the model knows (the seeds use fnv1a_64, murmur and hsieh)
HASHES = {"fnv1a_64": fnv1a_64, "murmur": murmur}


# --------------------------------------------------------------------------- backends

class Backends:
    """Real servers for the addresses fixtures name, started on first use."""

    def __init__(self, env):
        self.env = env
        self.servers = {}

    def get(self, kind, where, password=None):
        k = (kind, where, password)
        if k not in self.servers:
            if kind == "redis":
                self.servers[k] = self.env.redis(password=password)
            else:
                self.servers[k] = self.env.memcached()
        return self.servers[k]


@pytest.fixture(scope="module")
def backends(menv):
    return Backends(menv)


# --------------------------------------------------------------------------- a fixture, rewritten

class Route:
    """Where a pool's keys go: its servers, in the file's terms."""

    def __init__(self, pool):
        self.pool = pool
        self.entries = []  # (name for ketama, weight, Server or Route)

    def backends(self):
        """The real servers behind the pool, each once (a server may be both
        an entry and behind another pool of the file that is an entry)."""
        out = []
        for _, _, t in self.entries:
            for srv in t.backends() if isinstance(t, Route) else [t]:
                if all(srv is not o for o in out):
                    out.append(srv)
        return out

    def expected(self, key):
        """The server twemproxy's placement picks for key, or None when the
        model cannot tell (another hash or distribution)."""
        dist = self.pool.get("distribution", "ketama")
        hsh = self.pool.get("hash", "fnv1a_64")
        if dist != "ketama":
            return None
        k = Ketama([(name, w) for name, w, _ in self.entries])
        owners = {idx for _, idx in k.points}
        if len(owners) == 1:
            idx = owners.pop()  # one server holds the whole continuum: the hash does not matter
        elif hsh in HASHES:
            tag = self.pool.get("hash_tag", "").strip('"') or None
            idx = k.index(HASHES[hsh](hash_tag_key(key.encode(), tag)))
        else:
            return None
        t = self.entries[idx][2]
        return t.expected(key) if isinstance(t, Route) else t


class Running:
    """A fixture with its addresses moved to this run, and what runs for it."""

    def __init__(self, path, env, backends):
        self.path, self.env, self.backends = path, env, backends
        self.lines, self.pools = read_fixture(path)
        self.listens = {}  # pool name -> ("tcp", port) | ("unix", path)
        self.routes = {}
        self.sentinels = []

    def _listen(self, pool):
        i, v = pool.keys["listen"]
        addr = v.split()[0]
        if addr.startswith("/"):
            new = os.path.join(self.env.tmp, os.path.basename(addr))
            self.listens[pool.name] = ("unix", new)
        else:
            port = free_port()
            new = "%s:%d" % (HOST, port)
            self.listens[pool.name] = ("tcp", port)
        replace_value(self.lines, i, addr, new)

    def _own_listen(self, hostport):
        """The pool of this file that listens on hostport, if any: a server
        entry naming it reaches the proxy itself."""
        host, port = hostport.rsplit(":", 1)
        for p in self.pools:
            addr = p.get("listen").split()[0]
            if ":" in addr and not addr.startswith("/"):
                lh, lp = addr.rsplit(":", 1)
                if lp == port and lh in (host, "0.0.0.0"):
                    return p
        return None

    def _servers(self, pool, route):
        for i, entry in pool.lists.get("servers", []):
            hostport, weight, name = split_server(entry)
            own = self._own_listen(hostport)
            if own is not None:
                target = self.routes[own.name]
                new = "%s:%d" % (HOST, self.listens[own.name][1])
            else:
                target = self.backends.get("redis" if pool.redis else "memcached", hostport)
                new = target.addr
            replace_value(self.lines, i, hostport + ":", new + ":")
            route.entries.append((name or new, weight, target))

    def _sentinel_pool(self, pool, route):
        """A master per group (the pool's redis_auth as its requirepass), and a
        redis-sentinel per sentinels entry monitoring all of them."""
        password = pool.get("redis_auth")
        masters = {}
        for _, group in pool.lists["groups"]:
            masters[group] = self.backends.get("redis", "group " + group, password)
            route.entries.append((group, 1, masters[group]))
        for i, entry in pool.lists["sentinels"]:
            hostport = entry.split()[0]
            s = self.env.sentinel(masters)
            self.sentinels.append(s)
            replace_value(self.lines, i, hostport, s.addr)

    def prepare(self):
        for pool in self.pools:
            self._listen(pool)
            self.routes[pool.name] = Route(pool)
        for pool in self.pools:
            if "sentinels" in pool.lists:
                self._sentinel_pool(pool, self.routes[pool.name])
            else:
                self._servers(pool, self.routes[pool.name])
        return self.env.write_conf("\n".join(self.lines) + "\n", os.path.basename(self.path))

    def start_proxy(self, conf):
        log = self.env._path("nutcracker.log")
        sport = free_port()
        argv = [NUTCRACKER_BIN, "-c", conf, "-s", str(sport), "-a", HOST, "-i", "100", "-v", "4", "-o", log]
        proc, out = self.env.spawn(argv, "nutcracker")
        self.env.proxy_outputs.append(out)
        px = Proxy(proc, conf, log, out, sport, self.listens)
        conftest._LIVE_PROXIES.add(px)
        for name, (kind, where) in self.listens.items():
            ok = wait_port(where, proc) if kind == "tcp" else wait_unix(where, proc)
            assert ok, "pool %s did not listen on %s\n%s" % (name, where, px.log_tail())
        return px


def connect(kind, where, cls):
    return cls(port=where) if kind == "tcp" else cls(path=where)


# --------------------------------------------------------------------------- traffic checks

def holders_redis(route, key):
    out = []
    for srv in route.backends():
        c = srv.resp()
        try:
            v = c.call("GET", key)
        finally:
            c.close()
        if v is not None:
            out.append((srv, v))
    return out


def holders_mc(route, key):
    out = []
    for srv in route.backends():
        c = srv.mc()
        try:
            items, _ = c.retrieval(b"get " + key.encode())
        finally:
            c.close()
        out.extend((srv, it[2]) for it in items)
    return out


def check_placement(route, keys, holders):
    """Each key on exactly one backend of the pool with the value written; on the
    model's server where the model can tell.  Returns {key: backend}."""
    placed = {}
    for key, value in keys.items():
        found = holders(route, key)
        assert [v for _, v in found] == [value], "%s: %r held by %s" % (
            key, value, [(s.addr, v) for s, v in found])
        want = route.expected(key)
        if want is not None:
            assert found[0][0] is want, "%s on %s, placement says %s" % (key, found[0][0].addr, want.addr)
        placed[key] = found[0][0]
    return placed


def redis_traffic(px_kind, where, route, pool, prefix):
    c = connect(px_kind, where, Resp)
    try:
        password = pool.get("redis_auth")
        if password is not None:
            # the file's redis_auth: clients must AUTH first, with that password
            r = c.call("GET", prefix)
            assert isinstance(r, RespError) and r.msg.startswith("NOAUTH Authentication required"), r
            assert c.call("AUTH", password) == b"OK"
        keys = {k: ("v-" + k).encode() for k in spread_keys(prefix, 16)}
        if pool.get("hash_tag"):
            keys.update({"%s{tag}:a" % prefix: b"a", "%s{tag}:b" % prefix: b"b"})
        for k, v in keys.items():
            # a sentinel pool knows its masters once the sentinels answered: poll
            wait_until(lambda: c.call("SET", k, v) == b"OK", "SET %s through the proxy" % k, timeout=15)
        for k, v in keys.items():
            assert c.call("GET", k) == v, k
    finally:
        c.close()
    return keys


def mc_traffic(px_kind, where, prefix):
    c = connect(px_kind, where, Mc)
    try:
        keys = {k: ("v-" + k).encode() for k in spread_keys(prefix, 16)}
        for k, v in keys.items():
            assert c.cmd(b"set %s 0 0 %d" % (k.encode(), len(v)), v) == b"STORED", k
        for k, v in keys.items():
            items, _ = c.retrieval(b"get " + k.encode())
            assert [it[2] for it in items] == [v], k
    finally:
        c.close()
    return keys


# --------------------------------------------------------------------------- tests

def test_murmur_model_matches_twemproxy():
    with open(os.path.join(VECTORS, "hashes.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    col = rows[0].index("murmur")
    assert len(rows) > 10
    for row in rows[1:]:
        assert murmur(row[0].encode()) == int(row[col], 16), row[0]


def test_every_seed_example_has_a_fixture():
    assert sorted({os.path.basename(f)[:3] for f in FIXTURES}) == ["000", "001", "002", "003", "004"]
    for f in FIXTURES:
        with open(f, encoding="utf-8") as fh:
            head = fh.readline()
        seed = os.path.basename(f)[:20]  # "000_f3ec260a3b5c1051"
        assert head.startswith("# Seed: shared/seeds/%s.txt" % seed), (f, head)


@pytest.mark.parametrize("path", [ours_only(f) for f in FIXTURES])
def test_fixture_passes_test_conf(path):
    r = subprocess.run([NUTCRACKER_BIN, "-t", "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    assert out.strip().splitlines()[-1] == "nutcracker: configuration file '%s' syntax is ok" % path, out
    if not TWEMPROXY:
        assert out.count("\n") == 1, "-t printed problems:\n" + out


@pytest.mark.skipif(TWEMPROXY, reason="twemproxy 0.5 has no sentinel keys")
def test_sentinel_fixture_saying_redis_false_is_refused(tmp_path):
    """A sentinel pool is a redis pool: saying otherwise is an error on that line."""
    path = os.path.join(FIXTURE_DIR, "000_f3ec260a3b5c1051_alpha_sentinels.yml")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    at = lines.index("  redis_auth: 123456")
    lines.insert(at, "  redis: false")
    bad = str(tmp_path / "redis_false.yml")
    with open(bad, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([NUTCRACKER_BIN, "-t", "-c", bad], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 1, out
    assert out.splitlines() == [
        "%s:%d: redis: directive must be true in a pool with sentinels (sentinel pools are redis pools; "
        "leave it out or say true)" % (bad, at + 1),
        "nutcracker: configuration file '%s' syntax is invalid" % bad], out


@pytest.mark.skipif(not os.path.exists(DEBIAN_NUTCRACKER), reason="Debian's nutcracker not installed")
@pytest.mark.parametrize("path", FIXTURES, ids=fixture_ids())
def test_fixture_with_debian_twemproxy(path):
    """What the header comments say: twemproxy 0.5 reads every fixture but
    twemproxy-163's own, whose sentinel keys it does not know."""
    r = subprocess.run([DEBIAN_NUTCRACKER, "-t", "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    if os.path.basename(path) in TWEMPROXY_163:
        assert r.returncode == 1 and "syntax is invalid" in out, out
    else:
        assert r.returncode == 0 and "syntax is ok" in out, out


@pytest.mark.parametrize("path", [ours_only(f) for f in FIXTURES])
def test_fixture_serves_every_pool(env, backends, path):
    run = Running(path, env, backends)
    conf = run.prepare()
    px = run.start_proxy(conf)
    seed = os.path.basename(path)[:3]
    for pool in run.pools:
        kind, where = run.listens[pool.name]
        route = run.routes[pool.name]
        prefix = "seed%s:%s" % (seed, pool.name)
        if pool.redis:
            keys = redis_traffic(kind, where, route, pool, prefix)
            placed = check_placement(route, keys, holders_redis)
        else:
            keys = mc_traffic(kind, where, prefix)
            placed = check_placement(route, keys, holders_mc)
        if pool.get("hash_tag"):
            assert placed["%s{tag}:a" % prefix] is placed["%s{tag}:b" % prefix]
        if "sentinels" in pool.lists:
            # keys are placed by group name: spread over the groups whatever the ports
            assert len(set(map(id, placed.values()))) > 1
        if kind == "unix":
            # the permission written after the path ("/tmp/gamma 0666")
            perm = pool.get("listen").split()[1]
            assert stat.S_IMODE(os.stat(where).st_mode) == int(perm, 8)
    assert px.alive(), px.log_tail()
