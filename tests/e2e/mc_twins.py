"""One memcached alone and a proxy over three: the same bytes sent to both, every
reply byte compared (test_memcache_quiet.py, test_memcache_b64.py). Keys spread
over the three servers, so the proxy's replies come from several servers and it
puts them in order."""
from conftest import mc_pool
from hostile_util import raw_connect, recv_until

END = b"ms end:mark 1\r\nZ\r\nmg end:mark v\r\n"
END_REPLY = b"HD\r\nVA 1\r\nZ\r\n"


def start_twins(menv):
    """(memcached alone, the three behind the proxy, the proxy). The three are
    named, so ketama places keys by name, not by their ports (which each run
    picks): the tests' keys fall on more than one server in every run."""
    alone = menv.memcached()
    ms = menv.memcacheds(3)
    px = menv.proxy({"m": mc_pool(["%s:1 m%d" % (m.addr, i) for i, m in enumerate(ms)], timeout=5000)})
    return alone, ms, px


def exchange(port, data):
    """Send data then END on a new connection; every reply byte up to END's."""
    s = raw_connect(port, timeout=10)
    s.sendall(data + END)
    got = recv_until(s, END_REPLY)
    s.close()
    return got[:-len(END_REPLY)]


def both(twins, data):
    """The replies of memcached alone and of the proxy, every server flushed first."""
    alone, ms, px = twins
    answers = []
    for port in (alone.port, px.port("m")):
        for m in [alone] + ms:
            m.mc().cmd(b"flush_all")
        answers.append(exchange(port, data))
    return answers
