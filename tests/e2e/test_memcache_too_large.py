"""A memcached value the proxy will not hold is dropped as memcached drops one.

memcached reads a value over its item size (-I), drops it, answers
"SERVER_ERROR object too large for cache" and goes on with the connection; a
set or ms also deletes the key, so the value the client failed to replace is
not read back. The proxy does the same with a value over --request-size-limit
(and with one over 1 GB, memcached's largest item at any -I), without holding
it: before, it answered the error and closed the client, and a client that
keeps its connection after a SERVER_ERROR found it dead.

Each case sends the same bytes to memcached itself and through the proxy (whose
only server is that memcached, flushed in between) and compares the replies.
memcached runs with its default -I of 1 MB, so it refuses these values too.
"""
import socket
import time

import pytest

from conftest import HOST, mc_pool
from hostile_util import MB, SANITIZED, raw_connect, recv_until
from tls_util import Certs

LIMIT = 4 * MB  # --request-size-limit of this file's proxy
BIG = 6 * MB  # over the limit, and over memcached's 1 MB item size
END = b"set end:mark 0 0 1\r\nZ\r\nget end:mark\r\n"
END_REPLY = b"VALUE end:mark 0 1\r\nZ\r\nEND\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"


@pytest.fixture(scope="module")
def twins(menv):
    m = menv.memcached()
    px = menv.proxy({"m": mc_pool([m], timeout=10000)},
                    extra_args=["--request-size-limit=%d" % LIMIT], verbose=6)
    return m, px


def peak_rss(pid):
    """VmHWM of pid in bytes: the most it ever had resident."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for %d" % pid)


def exchange(port, parts):
    """Send parts (bytes, or an int: that many filler bytes) on a new connection,
    then END; return every reply byte up to END's answer."""
    s = raw_connect(port, timeout=30)
    chunk = b"v" * MB
    for part in parts:
        if isinstance(part, int):
            for off in range(0, part, len(chunk)):
                s.sendall(chunk[:min(len(chunk), part - off)])
        else:
            s.sendall(part)
    s.sendall(END)
    got = recv_until(s, END_REPLY)
    s.close()
    return got


def both(twins, parts):
    """The replies of memcached itself and of the proxy to the same bytes."""
    m, px = twins
    answers = []
    for port in (m.port, px.port("m")):
        m.mc().cmd(b"flush_all")
        answers.append(exchange(port, parts))
    return answers


CASES = {
    # set: the error, and the old value is gone
    "set": [b"set k 0 0 1\r\nA\r\nset k 0 0 %d\r\n" % BIG, BIG, b"\r\nget k\r\n"],
    "set-noreply": [b"set k 0 0 1\r\nA\r\nset k 0 0 %d noreply\r\n" % BIG, BIG, b"\r\nget k\r\n"],
    # add, replace, cas: the error, and the old value stays
    "add": [b"set k 0 0 1\r\nA\r\nadd k 0 0 %d\r\n" % BIG, BIG, b"\r\nget k\r\n"],
    "replace": [b"set k 0 0 1\r\nA\r\nreplace k 0 0 %d\r\n" % BIG, BIG, b"\r\nget k\r\n"],
    "cas": [b"set k 0 0 1\r\nA\r\ncas k 0 0 %d 1\r\n" % BIG, BIG, b"\r\nget k\r\n"],
    # meta set deletes like set
    "ms": [b"ms k 1\r\nA\r\nms k %d T0\r\n" % BIG, BIG, b"\r\nmg k v\r\n"],
    # with a base64 key (flag b) too: the decoded key is deleted
    "ms-base64": [b"ms Zm9v 1 b\r\nA\r\nms Zm9v %d b T0\r\n" % BIG, BIG,
                  b"\r\nmg Zm9v b v\r\nget foo\r\n"],
    # requests before and after it in the same sends, on other keys too
    "pipelined": [b"set a 0 0 1\r\n1\r\nset k 0 0 1\r\nA\r\nget a k\r\nset k 0 0 %d\r\n" % BIG, BIG,
                  b"\r\nget a k\r\nset b 0 0 2\r\n22\r\nincr a 5\r\nget a b k\r\n"],
    # two in a row
    "twice": [b"set k 0 0 %d\r\n" % BIG, BIG, b"\r\nadd j 0 0 %d\r\n" % BIG, BIG, b"\r\nget j k\r\n"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_value_over_the_limit_is_answered_as_memcached_does(twins, case):
    direct, proxied = both(twins, CASES[case])
    assert direct == proxied
    if "noreply" not in case:
        assert TOO_LARGE in proxied
    assert twins[1].alive()


def test_dropped_ms_of_a_key_delete_cannot_name_keeps_the_old_value(twins):
    """The one difference from memcached: the proxy deletes a dropped ms's key with
    a text `delete`, which cannot carry a decoded base64 key holding a space or a
    control byte. memcached deletes that item; through the proxy it stays."""
    key = b"YSBi"  # "a b"
    direct, proxied = both(twins, [b"ms %s 1 b\r\nA\r\nms %s %d b\r\n" % (key, key, BIG), BIG,
                                   b"\r\nmg %s b v\r\n" % key])
    assert direct == b"HD\r\n" + TOO_LARGE + b"EN\r\nSTORED\r\n" + END_REPLY
    assert proxied == b"HD\r\n" + TOO_LARGE + b"VA 1\r\nA\r\nSTORED\r\n" + END_REPLY


def test_value_over_memcacheds_largest_item_is_dropped_without_being_held(twins):
    """1.1 GB, over memcached's 1 GB largest item at any -I: the header alone says
    so, and the proxy drops the bytes as they come. The proxy's memory stays small
    (it held at most a read's worth of them), the reply is memcached's own."""
    m, px = twins
    size = 1100 * MB
    parts = [b"set k 0 0 1\r\nA\r\nset k 0 0 %d\r\n" % size, size, b"\r\nget k\r\n"]
    t0 = time.monotonic()
    direct, proxied = both(twins, parts)
    print("\n[1.1 GB twice] %.1fs" % (time.monotonic() - t0))
    assert direct == proxied
    assert proxied.startswith(b"STORED\r\n" + TOO_LARGE + b"END\r\n"), proxied[:200]
    if not SANITIZED:
        peak = peak_rss(px.proc.pid)
        assert peak < 64 * MB, "the proxy's peak RSS was %.1f MB" % (peak / MB)
    with open(px.log) as f:
        assert "a request of %d bytes not held: answered \"SERVER_ERROR object too large for cache\"" \
            % (len(parts[0]) - len(b"set k 0 0 1\r\nA\r\n") + size + 2) in f.read()


def test_length_memcached_cannot_read_is_a_format_error_as_in_memcached(twins):
    """2147483646 and more do not fit memcached's int: it answers 'bad command line
    format' and reads what follows as commands. So does the proxy now (it used to
    answer 'too large' and close)."""
    for n in (2147483646, 2147483647, 3000000000):
        direct, proxied = both(twins, [b"set k 0 0 %d\r\nget k\r\n" % n])
        assert direct == proxied
        assert proxied.startswith(b"CLIENT_ERROR bad command line format\r\nEND\r\n"), proxied


def test_pymemcache_gets_memcacheds_error_and_its_next_command_works(twins):
    from pymemcache.exceptions import MemcacheServerError
    m, px = twins
    c = px.pymc("m", timeout=30)
    for i in range(3):
        with pytest.raises(MemcacheServerError, match="object too large for cache"):
            c.set("big:%d" % i, b"v" * BIG, noreply=False)
        assert c.set("after:%d" % i, b"ok", noreply=False) is True
        assert c.get("after:%d" % i) == b"ok"
    c.close()


def read_lines_then_quiet(s, n):
    """The first n reply lines, and whatever else comes within a second."""
    got = b""
    while got.count(b"\r\n") < n:
        b = s.recv(4096)
        assert b, got
        got += b
    s.settimeout(1.0)
    try:
        got += s.recv(4096)
    except TimeoutError:
        pass
    return got


@pytest.fixture
def ejected(menv):
    """A proxy whose only server is down and, after one failed request, ejected:
    every request for it is refused by the proxy itself."""
    m = menv.memcached()
    px = menv.proxy({"m": mc_pool([m], timeout=2000, auto_eject_hosts=True, server_failure_limit=1,
                                  server_retry_timeout=30000)},
                    extra_args=["--request-size-limit=%d" % LIMIT])
    m.stop()
    s = raw_connect(px.port("m"), timeout=10)
    s.sendall(b"get k\r\n")
    assert read_lines_then_quiet(s, 1).startswith(b"SERVER_ERROR "), "the first failure"
    s.close()
    return px


NO_SERVER = b"SERVER_ERROR no server is available for this key\r\n"


def test_noreply_requests_for_an_ejected_server_get_no_reply(ejected):
    """memcached answers nothing to a noreply request, not even an error, and its
    clients read nothing for it: an error from the proxy would be read as the
    answer to the next request, and every answer after it would be one off for a
    client that keeps its connection after an error (pymemcache, whose set is
    noreply by default, happens to close it). The proxy used to answer these with
    errors, when it refused them itself (no server for the key, a connection it
    could not open); twemproxy answers nothing."""
    s = raw_connect(ejected.port("m"), timeout=10)
    s.sendall(b"delete k noreply\r\nset k 0 0 1 noreply\r\na\r\nincr k 1 noreply\r\n"
              b"touch k 1 noreply\r\nget k\r\n")
    got = read_lines_then_quiet(s, 1)
    s.close()
    assert got == NO_SERVER, got


def test_a_dropped_set_whose_server_is_down_gets_one_reply(ejected):
    """The delete a dropped set implies cannot reach the key's server: it adds no
    reply of its own. The client reads the set's answer, then its get's."""
    s = raw_connect(ejected.port("m"), timeout=10)
    s.sendall(b"set k 0 0 %d\r\n" % BIG)
    for _ in range(BIG // MB):
        s.sendall(b"v" * MB)
    s.sendall(b"\r\nget k\r\n")
    got = read_lines_then_quiet(s, 2)
    s.close()
    assert got == TOO_LARGE + NO_SERVER, got
    assert ejected.alive()


def test_a_value_over_the_limit_is_dropped_over_tls_too(menv, tmp_path_factory):
    """The same through a TLS listener: the block's bytes come out of the TLS
    stream, some of them decrypted ahead of any socket event."""
    certs = Certs(tmp_path_factory.mktemp("certs"))
    m = menv.memcached()
    px = menv.proxy({"m": mc_pool([m], timeout=10000, listen_tls=certs.listen_tls())},
                    extra_args=["--request-size-limit=%d" % LIMIT])
    raw = socket.create_connection((HOST, px.port("m")), timeout=30)
    s = certs.client_ctx().wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"set k 0 0 1\r\nA\r\nset k 0 0 %d\r\n" % BIG)
    for _ in range(BIG // MB):
        s.sendall(b"v" * MB)
    s.sendall(b"\r\nget k\r\nset j 0 0 1\r\nB\r\nget j\r\n")
    got = recv_until(s, b"VALUE j 0 1\r\nB\r\nEND\r\n")
    s.close()
    assert got == b"STORED\r\n" + TOO_LARGE + b"END\r\nSTORED\r\nVALUE j 0 1\r\nB\r\nEND\r\n", got
