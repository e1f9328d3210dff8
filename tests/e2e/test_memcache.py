"""Memcached ASCII protocol through the proxy (SPEC 6).

A pool of 3 memcached servers behind the proxy; a 4th memcached is used
directly as the reference: the same command sequence must give the same
replies (cas unique values aside, which differ per server).
"""

import hashlib
import re

import pytest

from conftest import HOST, free_port, mc_pool, placement
from hostile_util import raw_connect, recv_until
from mc_twins import both, start_twins


def k(i, prefix="k"):
    return ("%s%s" % (prefix, hashlib.md5(b"%d" % i).hexdigest()[:10])).encode()


@pytest.fixture(scope="module")
def mc(menv):
    servers = menv.memcacheds(3)
    ref = menv.memcached()
    px = menv.proxy({"alpha": mc_pool(servers)})
    return servers, ref, px


@pytest.fixture
def fresh(mc):
    servers, ref, px = mc
    for s in servers + [ref]:
        c = s.mc()
        assert c.cmd(b"flush_all") == b"OK"
        c.close()
    return mc


CAS_RE = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)


def no_cas(raw):
    return CAS_RE.sub(rb"\1 <cas>\r", raw)


def run_sequence(conn, steps):
    """steps: (command line, data block or None, how many reply lines / 'values')."""
    out = []
    for line, data, kind in steps:
        if kind == "values":
            out.append(no_cas(conn.retrieval(line)[1]))
        else:
            out.append(conn.cmd(line, data))
    return out


def test_storage_and_retrieval_commands_match_direct(fresh):
    servers, ref, px = fresh
    a, b, n, miss = k(1), k(2), k(3), k(4)
    steps = [
        (b"get " + a, None, "values"),
        (b"set " + a + b" 5 0 5", b"hello", "line"),
        (b"get " + a, None, "values"),
        (b"add " + a + b" 0 0 1", b"x", "line"),
        (b"add " + b + b" 7 0 3", b"bee", "line"),
        (b"replace " + miss + b" 0 0 1", b"x", "line"),
        (b"replace " + b + b" 8 0 4", b"bee2", "line"),
        (b"append " + a + b" 0 0 6", b" world", "line"),
        (b"prepend " + a + b" 0 0 3", b">> ", "line"),
        (b"append " + miss + b" 0 0 1", b"x", "line"),
        (b"get " + a + b" " + b, None, "values"),
        (b"set " + n + b" 0 0 2", b"10", "line"),
        (b"incr " + n + b" 5", None, "line"),
        (b"decr " + n + b" 20", None, "line"),
        (b"incr " + n + b" 18446744073709551615", None, "line"),
        (b"incr " + miss + b" 1", None, "line"),
        (b"decr " + miss + b" 1", None, "line"),
        (b"incr " + a + b" 1", None, "line"),
        (b"touch " + a + b" 1000", None, "line"),
        (b"touch " + miss + b" 1000", None, "line"),
        (b"delete " + b, None, "line"),
        (b"delete " + b, None, "line"),
        (b"get " + b, None, "values"),
        (b"set " + b + b" 0 0 0", b"", "line"),
        (b"get " + b + b" " + n, None, "values"),
    ]
    want = run_sequence(ref.mc(), steps)
    got = run_sequence(px.mc(), steps)
    assert got == want
    assert want[2] == b"VALUE " + a + b" 5 5\r\nhello\r\nEND\r\n"   # the sequence is the one intended


def test_cas(fresh):
    servers, ref, px = fresh
    results = []
    for conn in (ref.mc(), px.mc()):
        key = k(10)
        r = [conn.cmd(b"set " + key + b" 0 0 1", b"a")]
        items, _ = conn.retrieval(b"gets " + key)
        unique = items[0][3][0]
        r.append(conn.cmd(b"cas " + key + b" 0 0 1 " + unique, b"b"))
        r.append(conn.cmd(b"cas " + key + b" 0 0 1 " + unique, b"c"))      # stale unique
        r.append(conn.cmd(b"cas " + k(11) + b" 0 0 1 1", b"d"))             # missing key
        r.append(conn.retrieval(b"get " + key)[1])
        results.append(r)
    assert results[1] == results[0] == [b"STORED", b"STORED", b"EXISTS", b"NOT_FOUND",
                                        b"VALUE " + k(10) + b" 0 1\r\nb\r\nEND\r\n"]


def test_noreply_forms(fresh):
    servers, ref, px = fresh
    outs = []
    for conn in (ref.mc(), px.mc()):
        a, b, n, c = k(20), k(21), k(22), k(23)
        conn.send(b"".join([
            b"set " + a + b" 0 0 1 noreply\r\n1\r\n",
            b"add " + b + b" 0 0 1 noreply\r\n2\r\n",
            b"add " + b + b" 0 0 1 noreply\r\nX\r\n",             # fails silently
            b"replace " + b + b" 0 0 1 noreply\r\n3\r\n",
            b"append " + a + b" 0 0 1 noreply\r\n4\r\n",
            b"prepend " + a + b" 0 0 1 noreply\r\n0\r\n",
            b"set " + n + b" 0 0 1 noreply\r\n5\r\n",
            b"incr " + n + b" 10 noreply\r\n",
            b"decr " + n + b" 3 noreply\r\n",
            b"set " + c + b" 0 0 1 noreply\r\nc\r\n",
            b"delete " + c + b" noreply\r\n",
            b"touch " + a + b" 100 noreply\r\n",
            b"cas " + a + b" 0 0 1 1 noreply\r\nZ\r\n",           # stale cas, silently
        ]))
        # replies come in request order: an answer to any noreply command would come
        # before the get's VALUE lines, and retrieval() fails on a line it does not expect
        outs.append(conn.retrieval(b"get " + a + b" " + b + b" " + n + b" " + c)[1])
        assert conn.buf == b"", "more than the get's reply: %r" % conn.buf
    assert outs[1] == outs[0]
    assert outs[0] == (b"VALUE " + k(20) + b" 0 3\r\n014\r\nVALUE " + k(21) + b" 0 1\r\n3\r\n"
                       b"VALUE " + k(22) + b" 0 2\r\n12\r\nEND\r\n")


def test_a_key_named_noreply_is_answered(fresh):
    """`delete noreply` deletes the key "noreply" and is answered: memcached
    takes the last token for noreply only when it is not the key. The proxy
    took it for noreply: the server's answer then went to the next request on
    the shared server connection, another client's (h48)."""
    servers, ref, px = fresh
    outs = []
    for target in (ref, px):
        a, b = target.mc(), target.mc()
        r = [a.cmd(b"set noreply 0 0 1", b"x"), a.cmd(b"delete noreply"),
             b.cmd(b"delete noreply"), a.cmd(b"add noreply 0 0 1", b"y"),
             b.retrieval(b"get noreply")[1]]
        a.send(b"delete noreply noreply\r\n")  # now the last token is noreply
        r.append(a.retrieval(b"get noreply")[1])
        outs.append(r)
    assert outs[1] == outs[0] == [b"STORED", b"DELETED", b"NOT_FOUND", b"STORED",
                                  b"VALUE noreply 0 1\r\ny\r\nEND\r\n", b"END\r\n"]


def test_multiget_hits_and_duplicates_in_key_order(fresh):
    servers, ref, px = fresh
    keys = [k(i, "mh") for i in range(40)]
    for i, key in enumerate(keys):
        for conn in (ref.mc(), px.mc()):
            assert conn.cmd(b"set %s %d 0 2" % (key, i), b"%02d" % i) == b"STORED"
    query = keys + keys[::3] + keys[:5]
    line = b"get " + b" ".join(query)
    want = ref.mc().retrieval(line)[1]
    assert px.mc().retrieval(line)[1] == want
    assert want.count(b"VALUE") == len(query)


def test_multiget_across_servers_in_key_order(fresh):
    """Misses among the hits: twemproxy 0.5.0 returns the hits out of order then."""
    servers, ref, px = fresh
    keys = [k(i, "mg") for i in range(60)]
    where = placement(keys, servers)
    assert len(set(s.port for s in where.values())) == 3, "keys should cover the 3 servers"
    for i, key in enumerate(keys[:45]):
        val = b"v%d" % i * (i + 1)
        for conn in (ref.mc(), px.mc()):
            assert conn.cmd(b"set %s %d 0 %d" % (key, i, len(val)), val) == b"STORED"
    query = []
    for i, key in enumerate(keys):
        query.append(key)
        if i % 5 == 0:
            query.append(keys[i // 3])       # duplicates
        if i % 9 == 0:
            query.append(b"absent%d" % i)    # misses
    line = b"get " + b" ".join(query)
    want = ref.mc().retrieval(line)[1]
    got = px.mc().retrieval(line)[1]
    assert got == want
    # each key was stored on the server the hash picks
    for key in keys[:45]:
        items, _ = where[key].mc().retrieval(b"get " + key)
        assert len(items) == 1, key


def test_gets_multi(fresh):
    servers, ref, px = fresh
    keys = [k(i, "gs") for i in range(20)]
    for conn in (ref.mc(), px.mc()):
        for key in keys:
            assert conn.cmd(b"set " + key + b" 3 0 2", b"ok") == b"STORED"
    line = b"gets " + b" ".join(keys + keys[:3])
    want = no_cas(ref.mc().retrieval(line)[1])
    got = no_cas(px.mc().retrieval(line)[1])
    assert got == want


def test_pymemcache_client(fresh):
    servers, ref, px = fresh
    c = px.pymc()
    data = {k(i, "py").decode(): b"value-%d" % i for i in range(40)}
    assert c.set_many(data) == []
    assert c.get_many(list(data)) == data
    key = k(1, "py").decode()
    assert c.add(key, b"x", noreply=False) is False
    assert c.replace(key, b"new", noreply=False) is True
    assert c.append(key, b"+", noreply=False) is True
    assert c.prepend(key, b"-", noreply=False) is True
    assert c.get(key) == b"-new+"
    assert c.set("pycnt", b"1")
    assert c.incr("pycnt", 41) == 42
    assert c.decr("pycnt", 2) == 40
    val, cas = c.gets(key)
    assert c.cas(key, b"casd", cas, noreply=False) is True
    assert c.cas(key, b"stale", cas, noreply=False) is False
    assert c.touch(key, 100, noreply=False) is True
    assert c.delete(key, noreply=False) is True
    assert c.get(key) is None
    assert c.delete(key, noreply=False) is False


def test_binary_value(fresh):
    servers, ref, px = fresh
    c = px.pymc()
    val = bytes(range(256)) * 4 + b"\r\nEND\r\n"
    assert c.set("binval", val)
    assert c.get("binval") == val


def test_large_value(fresh):
    servers, ref, px = fresh
    conn = px.mc()
    val = b"x" * (900 * 1024)
    assert conn.cmd(b"set bigval 0 0 %d" % len(val), val) == b"STORED"
    items, _ = conn.retrieval(b"get bigval")
    assert items[0][2] == val


def test_key_of_250_bytes_works(fresh):
    servers, ref, px = fresh
    key = b"a" * 250
    conn = px.mc()
    assert conn.cmd(b"set " + key + b" 0 0 2", b"ok") == b"STORED"
    items, _ = conn.retrieval(b"get " + key)
    assert items == [(key, 0, b"ok", [])]
    assert sum(len(s.mc().retrieval(b"get " + key)[0]) for s in servers) == 1


def test_key_of_251_bytes_is_refused(fresh):
    servers, ref, px = fresh
    key = b"b" * 251
    conn = px.mc()
    conn.send(b"set " + key + b" 0 0 2\r\nok\r\n")
    got = conn.readline()
    assert not got.startswith(b"STORED"), got
    assert all(s.mc().retrieval(b"get " + key[:250])[0] == [] for s in servers)


def test_key_of_251_bytes_gets_client_error(fresh):
    """Ours: CLIENT_ERROR, and the connection stays usable (twemproxy closes it)."""
    servers, ref, px = fresh
    conn = px.mc()
    line = conn.cmd(b"get " + b"c" * 251)
    assert line.startswith(b"CLIENT_ERROR"), line
    assert conn.cmd(b"set after251 0 0 1", b"1") == b"STORED"


def test_unknown_command_gets_error(fresh):
    """Ours: ERROR, and the connection stays usable (twemproxy closes it)."""
    servers, ref, px = fresh
    conn = px.mc()
    assert conn.cmd(b"bogus command here") == b"ERROR"
    assert conn.cmd(b"set afterbogus 0 0 1", b"1") == b"STORED"
    assert conn.retrieval(b"get afterbogus")[1] == b"VALUE afterbogus 0 1\r\n1\r\nEND\r\n"


def test_version(fresh):
    """The servers' version (a live server answers), as libmemcached tools expect."""
    servers, ref, px = fresh
    line = px.mc().cmd(b"version")
    assert re.match(rb"^VERSION \S+$", line), line
    assert line == ref.mc().cmd(b"version")


def test_version_without_servers(env):
    """No server answers: a clear error, and the connection goes on."""
    px = env.proxy({"alpha": mc_pool(["%s:%d" % (HOST, free_port()), "%s:%d" % (HOST, free_port())])})
    c = px.mc()
    assert c.cmd(b"version").startswith(b"SERVER_ERROR ")
    assert c.cmd(b"mn") == b"MN"


def test_quit_closes(fresh):
    servers, ref, px = fresh
    conn = px.mc()
    conn.send(b"quit\r\n")
    assert conn.is_closed()


def test_flush_all_reaches_every_server(fresh):
    """Ours: flush_all goes to every server (twemproxy closes the connection)."""
    servers, ref, px = fresh
    keys = [k(i, "fl") for i in range(30)]
    conn = px.mc()
    for key in keys:
        assert conn.cmd(b"set " + key + b" 0 0 1", b"1") == b"STORED"
    assert all(s.mc().cmd(b"stats items") != b"END" for s in servers)
    assert conn.cmd(b"flush_all") == b"OK"
    for s in servers:
        items, _ = s.mc().retrieval(b"get " + b" ".join(keys))
        assert items == [], "server %d still has keys" % s.port
    assert conn.cmd(b"set " + keys[0] + b" 0 0 1", b"2") == b"STORED"


def settings(server):
    c = server.mc()
    c.send(b"stats settings\r\n")
    out = {}
    while True:
        line = c.readline()
        if line == b"END":
            return out
        _, name, value = line.split(b" ", 2)
        out[name] = value


def test_verbosity_reaches_every_server(fresh):
    """Ours: verbosity goes to every server."""
    servers, ref, px = fresh
    try:
        assert px.mc().cmd(b"verbosity 1") == b"OK"
        assert [settings(s)[b"verbosity"] for s in servers] == [b"1"] * 3
    finally:
        for s in servers:
            s.mc().cmd(b"verbosity 0")


def test_gat_and_gats(fresh):
    """Ours: gat/gats are routed by key."""
    servers, ref, px = fresh
    keys = [k(i, "gat") for i in range(12)]
    outs = []
    for conn in (ref.mc(), px.mc()):
        for key in keys[:8]:
            assert conn.cmd(b"set " + key + b" 1 0 3", b"abc") == b"STORED"
        outs.append((conn.retrieval(b"gat 1000 " + b" ".join(keys))[1],
                     no_cas(conn.retrieval(b"gats 1000 " + b" ".join(keys[:4]))[1])))
    assert outs[1] == outs[0]
    assert outs[0][0].count(b"VALUE") == 8


def test_meta_commands(fresh):
    """Ours: mn/ms/mg/md/ma routed by key (twemproxy closes the connection)."""
    servers, ref, px = fresh
    a, n = k(1, "meta"), k(2, "meta")

    def seq(conn):
        out = [conn.cmd(b"mn")]
        out.append(conn.cmd(b"ms " + a + b" 2 F5", b"hi"))
        conn.send(b"mg " + a + b" v f k\r\n")
        head = conn.readline()
        out.append(head)
        if head.startswith(b"VA"):
            out.append(conn.readline())
        out.append(conn.cmd(b"mg " + k(3, "meta") + b" v"))
        out.append(conn.cmd(b"ma " + n + b" N0 J5 v"))
        if out[-1].startswith(b"VA"):
            out.append(conn.readline())
        out.append(conn.cmd(b"ma " + n + b" D10 v"))
        if out[-1].startswith(b"VA"):
            out.append(conn.readline())
        out.append(conn.cmd(b"md " + a))
        out.append(conn.cmd(b"md " + a))
        out.append(conn.cmd(b"mn"))
        return out

    want = seq(ref.mc())
    got = seq(px.mc())
    assert got == want
    assert want[0] == b"MN" and want[1] == b"HD"
    # the stored meta item is on the server the hash picks
    assert px.mc().cmd(b"ms " + a + b" 1", b"z") == b"HD"
    assert placement([a], servers)[a].mc().retrieval(b"get " + a)[1] == b"VALUE " + a + b" 0 1\r\nz\r\nEND\r\n"


def test_backend_down_gives_server_error(env):
    live = env.memcached()
    dead = "%s:%d" % (HOST, free_port())
    px = env.proxy({"alpha": mc_pool([live, dead])})
    keys = [k(i, "dn") for i in range(60)]
    where = placement(keys, [live.addr, dead])
    on_dead = [x for x in keys if where[x] == dead]
    on_live = [x for x in keys if where[x] == live.addr]
    conn = px.mc()
    line = conn.cmd(b"set " + on_dead[0] + b" 0 0 1", b"1")
    assert line.startswith(b"SERVER_ERROR"), line
    assert conn.cmd(b"set " + on_live[0] + b" 0 0 1", b"1") == b"STORED"


def test_timeout_gives_server_error(env):
    """A backend that does not answer in time: SERVER_ERROR Connection timed out."""
    import socket
    blackhole = socket.socket()
    blackhole.bind((HOST, 0))
    blackhole.listen(16)           # accepts connections (kernel backlog) but never answers
    try:
        px = env.proxy({"alpha": mc_pool(["%s:%d" % blackhole.getsockname()], timeout=300)})
        conn = px.mc()
        line = conn.cmd(b"get somekey")
        assert line == b"SERVER_ERROR Connection timed out", line
    finally:
        blackhole.close()



# --------------------------------------------------------------------------- NUL bytes

NUL_CASES = [
    b"set k\x00z 0 0 1\r\nx\r\n",        # "set k": ERROR, then "x" is a command: ERROR
    b"set k 0 0 5\x00 junk\r\nhello\r\n",  # "set k 0 0 5": STORED
    b"delete k\x00 noreply\r\n",           # noreply after the NUL: NOT_FOUND is sent
    b"incr n 1\x00 noreply\r\n",
    b"touch za 10\x00 noreply\r\n",
    b"md k\x00 q\r\n",                     # q after the NUL: NF is sent
    b"ms k 1\x00 q\r\nx\r\n",
    b"version\x00 x\r\n",
    b"mn\x00 x\r\n",
    b"get za zb\x00 k\r\n",
    b"\x00\r\n",
]


@pytest.fixture(scope="module")
def twins(menv):
    return start_twins(menv)


@pytest.mark.parametrize("line", NUL_CASES, ids=range(len(NUL_CASES)))
def test_a_nul_ends_the_command_as_memcached_reads_it(twins, line):
    """memcached reads a command line as a C string: the command ends at a NUL.
    The proxy counted the replies of the whole line, so its shared server
    connection fell out of step (a client's next get answered ERROR, the one
    after it with another key's value; another client's requests on that
    connection got them too). Same bytes to memcached alone and through the
    proxy, replies compared byte for byte."""
    setup = b"set za 0 0 2\r\nAA\r\nset zb 0 0 2\r\nBB\r\nset n 0 0 1\r\n5\r\n"
    after = b"get za\r\nget zb\r\nversion\r\n"
    alone, proxied = both(twins, setup + line + after)
    assert proxied == alone
    assert re.search(rb"VALUE za 0 2\r\nAA\r\nEND\r\nVALUE zb 0 2\r\nBB\r\nEND\r\nVERSION \S+\r\n$", alone)


def test_a_get_of_twenty_thousand_keys_as_memcached_and_twemproxy_serve_it(twins):
    """memcached and twemproxy take a get/gets line of any length (pymemcache's
    get_many of many keys is one line); the proxy refused one over 64 KB
    (CLIENT_ERROR line too long, and a close). A 170 KB line, sent whole and
    trickled in 1 KB pieces: the replies byte for byte as memcached alone's."""
    alone, ms, px = twins
    stored = [b"big:%d" % i for i in range(0, 20000, 997)]
    setup = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(key), key) for key in stored)
    line = b"get " + b" ".join(b"big:%d" % i for i in range(20000)) + b"\r\n"
    gets = b"gets " + b" ".join(stored + stored[:3]) + b" " + b"x" * 150000 + b"\r\n"
    assert len(line) > 150000
    want, got = both(twins, setup + line)
    assert got == want and want.count(b"VALUE") == len(stored)
    want, got = both(twins, setup + gets)  # the last key is too long: both refuse the line
    assert got == want, (want[-200:], got[-200:])
    for port in (alone.port, px.port("m")):  # both() flushed alone last: set again
        s = raw_connect(port, timeout=10)
        s.sendall(setup)
        assert recv_until(s, b"STORED\r\n" * len(stored)) == b"STORED\r\n" * len(stored)
        for i in range(0, len(line), 1024):
            s.sendall(line[i:i + 1024])
        got = recv_until(s, b"END\r\n")
        s.close()
        assert got.count(b"VALUE") == len(stored), port
    c = px.pymc()
    assert c.get_many(["big:%d" % i for i in range(20000)]) == {k.decode(): k for k in stored}
