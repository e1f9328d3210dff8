"""Differential tests: the same bytes sent to a real memcached / redis-server and, on
another connection, through a one-server pool of the proxy in front of a twin server
must get the same reply bytes, and the same close or no close.

The corpus (valid, malformed and edge-case requests of both protocols) is in
differential_corpus.py. Each case runs on fresh connections after both servers were
flushed, followed by a request the proxy and the server answer alike (memcached `mn`,
redis PING): its reply marks the end of the case's replies, and shows that the
connection still serves. A difference is either fixed in the parser or listed below,
with the reason, and in README.md ("Deliberate differences from the servers"); a
listed case must still differ from the server, so the list cannot go stale.
"""

import re
import socket
import time

import pytest

from conftest import HOST, TWEMPROXY, mc_pool, recv_all, redis_pool
from differential_corpus import MC, RD

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy closes on most of these")

REFUSED = "refused by the proxy (README: commands the proxy does not serve)"


def same_as(proxy_reply, why, closed=False, server=True):
    """A deliberate difference: what the proxy answers (bytes, or a regex) and why.
    server=False: the server is not asked (it would block, or start a session)."""
    return {"reply": proxy_reply, "why": why, "closed": closed, "server": server}


MC_DELIBERATE = {}  # none: every memcached case answers as memcached does

RD_DELIBERATE = {
    "select-1": same_as(b"-ERR SELECT is not allowed through the proxy (pool db is 0)\r\n",
                        "a pool has one database (redis_db): another would be switched on a "
                        "server connection every client of the pool shares"),
    "auth-nopass": same_as(b"-ERR Client sent AUTH, but no password is set\r\n",
                           "twemproxy's wording (SPEC 5.3): the proxy, not redis, holds the password"),
    "hello-2": same_as(re.compile(rb"\*14\r\n\$6\r\nserver\r\n\$10\r\nnutcracker\r\n\$7\r\nversion\r\n"),
                       "the proxy answers HELLO itself: it names itself, not one of its servers"),
    "hello-3": same_as(re.compile(rb"%7\r\n\$6\r\nserver\r\n\$10\r\nnutcracker\r\n\$7\r\nversion\r\n"),
                       "the proxy answers HELLO itself: it names itself, not one of its servers"),
    "client-id": same_as(re.compile(rb":\d+\r\n"), "the id of the client's connection to the proxy"),
    "client-setinfo": same_as(b"+OK\r\n", "answered as redis 7.2 does (clients send it at connect); "
                              "redis 7.0 does not know it"),
    "inline-nul": same_as(b"-ERR Protocol error: NUL byte in inline request\r\n",
                          "redis looks for the line end with strchr(), which stops at the NUL: it "
                          "waits for more (until 64 KB, then 'too big inline request')",
                          closed=True, server=False),
    "config": same_as(b"-ERR unsupported command 'config' (no key to route by)\r\n", REFUSED),
    "info": same_as(re.compile(rb"\$\d+\r\n# Server\r\nredis_version:[^\r]+\r\nredis_mode:proxy\r\n"),
                    "INFO describes the proxy (its clients, memory, counters) with its servers' "
                    "version and keys"),
    "flushall": same_as(b"-ERR unsupported command 'flushall' (allow_flush is off for this pool)\r\n",
                        "a pool flushes all its servers only with allow_flush: true"),
    "command-count": same_as(re.compile(rb":\d+\r\n"),
                             "COMMAND counts and lists the commands the proxy serves"),
    "bad-multibulk-big": same_as(b"-ERR Protocol error: invalid multibulk length\r\n",
                                 "a request holds at most 1048576 arguments through the proxy (its "
                                 "memory is bounded); redis 7 takes up to 2^31-1", closed=True),
    "bulk-no-crlf": same_as(b"-ERR Protocol error: missing CRLF after bulk argument\r\n",
                            "redis skips the 2 bytes after a bulk argument unchecked and reads "
                            "the rest of the stream out of step; the proxy refuses it",
                            closed=True),
}

END = {"mc": (b"mn\r\n", b"MN\r\n"), "rd": (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")}
BOUND = 10.0  # seconds: only a failing case ever waits this long


def exchange(port, data, proto):
    """Send data and the end marker; the reply bytes before the marker's reply, and
    whether the peer closed instead of answering it."""
    term, term_reply = END[proto]
    # data that sends the marker itself (a case ending in mn or PING) usually gets the
    # marker's reply twice: the first must not be taken for the end. Where it is answered
    # otherwise (PING while subscribed), a second never comes: a second of quiet ends it.
    need = 2 if term in data else 1
    s = socket.create_connection((HOST, port), timeout=BOUND)
    try:
        s.sendall(data + term)
        out = b""
        while not (out.endswith(term_reply) and out.count(term_reply) >= need):
            if out.endswith(term_reply):
                s.settimeout(1.0)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                if out.endswith(term_reply):
                    break
                raise
            if not chunk:
                return out, True
            out += chunk
        return out[:-len(term_reply)], False
    finally:
        s.close()


@pytest.fixture(scope="module")
def twins(menv):
    """For each protocol a server asked directly and its twin behind the proxy."""
    mc_direct, mc_behind = menv.memcacheds(2)
    rd_direct, rd_behind = menv.redises(2)
    px = menv.proxy({"mc": mc_pool([mc_behind]), "rd": redis_pool([rd_behind])})
    return {"mc": (mc_direct, mc_behind, px.port("mc")), "rd": (rd_direct, rd_behind, px.port("rd"))}


def flush(twins, proto):
    direct, behind, _ = twins[proto]
    for s in (direct, behind):
        if proto == "mc":
            assert s.mc().cmd(b"flush_all") == b"OK"
        else:
            assert s.resp().call("FLUSHALL") == b"OK"


def check(twins, proto, case, data, deliberate):
    direct, _, proxy_port = twins[proto]
    flush(twins, proto)
    got = exchange(proxy_port, data, proto)
    want = deliberate.get(case)
    if want is None:
        assert got == exchange(direct.port, data, proto), "differs from the server"
        return
    reply, closed = got
    if isinstance(want["reply"], bytes):
        assert reply == want["reply"], want["why"]
    else:
        assert want["reply"].match(reply), (reply, want["why"])
    assert closed == want["closed"]
    if want["server"]:
        flush(twins, proto)
        assert exchange(direct.port, data, proto) != got, "listed as different, but is the same"


@pytest.mark.parametrize("case,data", MC, ids=[c for c, _ in MC])
def test_memcache(twins, case, data):
    check(twins, "mc", case, data, MC_DELIBERATE)


@pytest.mark.parametrize("case,data", RD, ids=[c for c, _ in RD])
def test_redis(twins, case, data):
    check(twins, "rd", case, data, RD_DELIBERATE)


@pytest.mark.parametrize("first,second", [
    (b"*2\r\n$3\r\nGET\r\n$", b"-5\r\n"),
    (b"*2\r\n$3\r\nGE", b"T\r\n$-1\r\n"),
    (b"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$", b"x\r\n"),
    (b"*1\r\n$", b"-3\r\n"),
    (b"*200\r\n$3\r\nDEL\r\n" + b"$0\r\n\r\n" * 10 + b"$0", b"\r\n\r\n" + b"$0\r\n\r\n" * 187 + b"$-5\r\n"),
], ids=["minus-5", "minus-1", "not-a-number", "name", "200-arguments"])
def test_redis_bad_length_in_a_second_write(twins, first, second):
    """A bulk length that cannot be, arriving in a later write than the start of
    its request: redis answers at once and closes. The proxy waited for as many
    bytes as the smallest right argument takes (one more), which never came."""
    direct, _, proxy_port = twins["rd"]
    got = []
    for port in (direct.port, proxy_port):
        s = socket.create_connection((HOST, port), timeout=3)
        try:
            s.sendall(first)
            time.sleep(0.1)
            s.sendall(second)
            out = b""
            while True:
                chunk = s.recv(65536)  # a hang is a socket.timeout here
                if not chunk:
                    break
                out += chunk
            got.append(out)
        finally:
            s.close()
    assert got[1] == got[0] == b"-ERR Protocol error: invalid bulk length\r\n"


def test_deliberate_lists_name_corpus_cases():
    assert set(MC_DELIBERATE) <= {c for c, _ in MC}
    assert set(RD_DELIBERATE) <= {c for c, _ in RD}


def test_memcache_stats_has_the_servers_shape(twins):
    """`stats` values change by the second: the same names in the same order, and a
    number where the server has one."""
    direct, _, proxy_port = twins["mc"]
    d, _ = exchange(direct.port, b"stats\r\n", "mc")
    p, closed = exchange(proxy_port, b"stats\r\n", "mc")
    assert not closed
    dl, pl = d.split(b"\r\n"), p.split(b"\r\n")
    assert [l.split(b" ")[:2] for l in pl] == [l.split(b" ")[:2] for l in dl]
    assert pl[-2:] == [b"END", b""]


def test_memcache_binary_request(twins):
    """Deliberate: memcached answers the binary protocol; the proxy speaks ASCII only
    and says so at once, then closes (the request has no line end to wait for). It
    says so in the binary protocol, which a binary client reads: a response of the
    request's opcode and opaque, status 0x84 "internal error" (spymemcached reads
    0x83 "not supported" as a miss or a plain false), the reason as its value (the
    text line, read as a header, was a miss or a reset to php-memcached and Dalli).
    A header that comes in pieces is answered once it is all in, as memcached reads
    it (the proxy answered its first piece with the text line)."""
    direct, _, proxy_port = twins["mc"]
    version = b"\x80\x0b" + b"\x00" * 10 + b"\x12\x34\x56\x78" + b"\x00" * 8  # VERSION, opaque 0x12345678

    def exchange(port, data):
        s = socket.create_connection((HOST, port), timeout=BOUND)
        s.sendall(data)
        if port == proxy_port:
            out = recv_all(s)  # then the close
        else:
            out = b""
            while len(out) < 24:  # memcached's header (it keeps the connection)
                out += s.recv(4096)
        s.close()
        return out
    why = b"binary protocol is not supported through the proxy"
    got = exchange(proxy_port, version)
    assert got[:2] == b"\x81\x0b" and got[6:8] == b"\x00\x84" and got[12:16] == b"\x12\x34\x56\x78", got
    assert int.from_bytes(got[8:12], "big") == len(why) and got[24:] == why
    head = exchange(direct.port, version)
    assert head[:2] == b"\x81\x0b" and head[12:16] == b"\x12\x34\x56\x78"  # memcached's: same framing
    s = socket.create_connection((HOST, proxy_port), timeout=BOUND)
    s.sendall(version[:8])
    time.sleep(0.2)
    s.sendall(version[8:])
    got = recv_all(s)
    s.close()
    assert got[:2] == b"\x81\x0b" and got[12:16] == b"\x12\x34\x56\x78" and got[24:] == why, got


def test_memcache_binary_quiet_get_is_closed_unanswered(twins):
    """Deliberate: libmemcached (php-memcached with OPT_BINARY_PROTOCOL) sends
    each get as a quiet GETKQ and a NOOP, and reads an error response to the
    GETKQ as a miss: a refusal in the binary protocol made every get a miss and
    no error. The proxy closes such a connection without a response (a
    connection failure to the client); memcached answers the NOOP."""
    direct, _, proxy_port = twins["mc"]
    getkq = b"\x80\x0d\x00\x01" + b"\x00" * 4 + b"\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 8 + b"k"
    noop = b"\x80\x0a" + b"\x00" * 10 + b"\x00\x02\x00\x00" + b"\x00" * 8
    s = socket.create_connection((HOST, proxy_port), timeout=BOUND)
    s.sendall(getkq + noop)
    assert recv_all(s) == b""  # the close, and nothing before it
    s.close()
    s = socket.create_connection((HOST, direct.port), timeout=BOUND)
    s.sendall(getkq + noop)
    head = b""
    while len(head) < 24:
        head += s.recv(4096)
    s.close()
    assert head[:2] == b"\x81\x0a" and head[6:8] == b"\x00\x00"  # the miss unsaid, the NOOP answered
