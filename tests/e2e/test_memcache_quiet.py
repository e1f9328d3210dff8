"""memcached's meta quiet mode (flag q) through the proxy, as memcached answers it.

With q, memcached leaves out the reply a client does not need: the miss of mg
(EN), the success of ms and md (HD) and of ma (HD, or VA with v). Errors and
the other outcomes still show, and mn answers MN once everything before it has
been answered, so a client pipelines quiet requests and ends them with mn. This
is how meta clients do multi-gets.

The proxy refused q ("quiet mode not supported through the proxy"): a server
that may say nothing leaves the proxy nothing to match replies against. It now
forwards each quiet request without its q and keeps back, itself, the replies
q would have kept back; mn is answered in its place among the replies.

Each case sends the same bytes to one memcached and through a proxy over three
memcacheds (every server flushed in between) and compares every reply byte:
the keys spread over the three servers, so the replies come back from several
servers and the proxy puts them in order.
"""
import pytest

from conftest import mc_pool, spread_keys
from hostile_util import raw_connect, recv_until
from mc_twins import both, exchange, start_twins


@pytest.fixture(scope="module")
def twins(menv):
    return start_twins(menv)

KEYS = spread_keys("q:", 12)


def many_gets(flags):
    return b"".join(b"mg %s %s\r\n" % (k.encode(), flags) for k in KEYS) + b"mn\r\n"


def set_half():
    return b"".join(b"ms %s 2 q\r\nv%d\r\n" % (k.encode(), i % 10)
                    for i, k in enumerate(KEYS) if i % 2 == 0)


CASES = {
    # a multi-get: the hits, in request order, then MN; the misses say nothing
    "mg-multiget": set_half() + many_gets(b"v k q") + b"mn\r\n",
    "mg-opaque": set_half() + b"".join(b"mg %s v q O%d\r\n" % (k.encode(), i)
                                       for i, k in enumerate(KEYS)) + b"mn\r\n",
    # a hit without v is HD, and shows
    "mg-hit-no-value": set_half() + many_gets(b"q"),
    # quiet sets: HD kept back; NS (add of a key there, replace of one not) shows
    "ms": set_half() + b"".join(b"ms %s 1 q ME\r\nx\r\n" % k.encode() for k in KEYS) + b"mn\r\n",
    "ms-cas-mismatch": b"ms %s 1 q C999\r\nx\r\nmn\r\n" % KEYS[0].encode(),
    "ms-large-value": b"ms %s 300000 q T0\r\n%s\r\nmn\r\nmg %s s q\r\nmn\r\n" % (
        KEYS[1].encode(), b"x" * 300000, KEYS[1].encode()),
    # deletes: HD kept back, NF shows
    "md": set_half() + b"".join(b"md %s q\r\n" % k.encode() for k in KEYS) + b"mn\r\n",
    # arithmetic: success (HD, or VA with v) kept back; NF and a non-number show
    "ma": b"ms %s 1 q\r\n5\r\nms %s 1 q\r\nx\r\n" % (KEYS[0].encode(), KEYS[1].encode()) +
          b"".join(b"ma %s q v D2\r\n" % k.encode() for k in KEYS[:4]) + b"mn\r\nmg %s v\r\n" % KEYS[0].encode(),
    # arithmetic that creates its key (N): memcached shows that reply, q or not;
    # the hits stay quiet
    "ma-vivify": b"".join(b"ms %s 1 q\r\n7\r\n" % k.encode() for k in KEYS[::2]) +
                 b"".join(b"ma %s q N0 J5 v O%d\r\n" % (k.encode(), i) for i, k in enumerate(KEYS)) +
                 b"".join(b"ma %s q N0 MD k\r\n" % k.encode() for k in KEYS[:3]) +
                 b"mn\r\nmg %s v\r\nmg %s v\r\n" % (KEYS[0].encode(), KEYS[1].encode()),
    # q anywhere among the flags, and spaces around it
    "q-first-and-last": set_half() + b"mg %s q v t\r\nmg %s  v  q\r\nmn\r\n" % (
        KEYS[0].encode(), KEYS[2].encode()),
    # memcached refuses a flag given twice, q too
    "q-twice": b"mg %s v q q\r\nmn\r\n" % KEYS[0].encode(),
    # me ignores q: its miss shows
    "me": b"me %s q\r\nmn\r\n" % KEYS[0].encode(),
    # quiet and loud requests mixed, classic commands too
    "mixed": set_half() + b"get %s\r\nmg %s v q\r\nmg %s v\r\ndelete %s\r\nmg %s v q\r\nmn\r\n" % (
        KEYS[0].encode(), KEYS[1].encode(), KEYS[1].encode(), KEYS[2].encode(), KEYS[2].encode()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_quiet_meta_requests_are_answered_as_memcached_does(twins, case):
    direct, proxied = both(twins, CASES[case])
    assert proxied == direct
    assert b"not supported" not in proxied


def test_quiet_multiget_leaves_only_the_hits(twins):
    """The point of it: of 12 quiet gets, 6 hits, the client reads the 6 values
    and MN, nothing for the misses (checked on its own, not only as 'like memcached')."""
    _, ms, px = twins
    got = exchange(px.port("m"), set_half() + many_gets(b"v q"))
    assert got.count(b"VA 2\r\n") == 6, got
    assert got.endswith(b"MN\r\n") and got.count(b"MN\r\n") == 1, got
    assert b"EN" not in got and b"HD" not in got, got
    # the six values came from more than one server
    holders = [m for m in ms if any(m.mc().cmd(b"mg %s v" % k.encode()).startswith(b"VA")
                                    for k in KEYS[::2])]
    assert len(holders) > 1, "the keys all went to one server"


@pytest.mark.parametrize("request_", [b"mg k v q", b"ma k q N0 v"])
def test_quiet_request_to_a_server_that_is_down_gets_the_error(menv, request_):
    """q keeps back success only: a request the proxy cannot forward is answered
    with its error, as memcached answers its own errors to quiet requests, and the
    mn after it still comes (an ma with N, sent with an mn of the proxy's behind
    it, gets the whole error too)."""
    m = menv.memcached()
    px = menv.proxy({"m": mc_pool([m], timeout=2000)})
    m.stop()
    s = raw_connect(px.port("m"), timeout=10)
    s.sendall(request_ + b"\r\nmn\r\n")
    got = recv_until(s, b"MN\r\n")
    s.close()
    assert got.startswith(b"SERVER_ERROR "), got
    assert got.count(b"\r\n") == 2, got
