"""memcached's meta b flag (a base64 key) through the proxy, as memcached answers it.

With b, a meta command's key token is base64 and memcached stores the item under
the decoded bytes: `ms Zm9v b` and `set foo` write the same item, and binary keys
(spaces, NUL...) become possible. The proxy refused b ("base64 keys not
supported through the proxy"), since routing by the base64 text would put the
item on another server than a `get` of its bytes looks on. It now routes by the
decoded key, decoded as memcached decodes it, and forwards the request as it came.

Each case sends the same bytes to one memcached and through a proxy over three
memcacheds (every server flushed in between) and compares every reply byte.
"""
import base64

import pytest

from conftest import spread_keys
from hostile_util import raw_connect, recv_until
from mc_twins import both, start_twins


@pytest.fixture(scope="module")
def twins(menv):
    return start_twins(menv)


def b64(key):
    return base64.b64encode(key if isinstance(key, bytes) else key.encode())


KEYS = spread_keys("b64:", 12)
BINARY = [b"a b", b"\x00\x01\x02", b"tab\there", b"\xff" * 40, b"line\r\nbreak", b"x" * 186]


def test_items_set_with_b_are_read_by_their_bytes(twins):
    """ms with b, then get and mg of the plain key and mg with b again: all find
    it, on whichever server the key's bytes hash to."""
    data = b"".join(b"ms %s 2 b T0 F5\r\nv%d\r\n" % (b64(k), i % 10) for i, k in enumerate(KEYS))
    data += b"".join(b"get %s\r\nmg %s v f k\r\nmg %s b v k\r\n" % (k.encode(), k.encode(), b64(k))
                     for k in KEYS)
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert proxied.count(b"VALUE ") == len(KEYS) and b"EN\r\n" not in proxied


def test_items_set_by_their_bytes_are_read_with_b(twins):
    data = b"".join(b"set %s 3 0 2\r\nv%d\r\n" % (k.encode(), i % 10) for i, k in enumerate(KEYS))
    data += b"".join(b"mg %s b v f\r\nma %s b\r\nmd %s b q\r\nmg %s v\r\n"
                     % (b64(k), b64(k), b64(k), k.encode()) for k in KEYS)
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert proxied.count(b"VA 2 f3\r\n") == len(KEYS)


def test_binary_keys(twins):
    """Keys no text command can carry, pipelined with quiet flags and mn."""
    data = b"".join(b"ms %s 1 b q\r\n%d\r\n" % (b64(k), i) for i, k in enumerate(BINARY))
    data += b"".join(b"mg %s b q k v\r\nma %s b v\r\n" % (b64(k), b64(k)) for k in BINARY)
    data += b"mg %s b q v\r\nmn\r\n" % b64(b"never set")
    data += b"".join(b"md %s b\r\nmg %s b v\r\n" % (b64(k), b64(k)) for k in BINARY)
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert proxied.count(b"VA 1 k") == len(BINARY)


def test_keys_memcached_decodes_its_own_way(twins):
    """memcached skips bytes outside the alphabet and stops at the first group
    with padding: the proxy routes by what memcached stores, so these meet the
    item `set foo` wrote, wherever it is."""
    data = b"set foo 0 0 2\r\nhi\r\nset f 0 0 1\r\nF\r\n"
    for token in (b"Zm9v", b"Zm!9v", b"Zm.9v", b"Zm9-v", b"Zg==", b"Zg==Zm9v"):
        data += b"mg %s b v k\r\n" % token
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert proxied.count(b"VA ") == 6, proxied


@pytest.mark.parametrize("token", [b"Zm9", b"!!!!", b"Zm9v=", b"Zm9vY===", b"Zm9v====", b"A" * 250])
def test_keys_memcached_refuses_get_its_answer(twins, token):
    """The request goes to a server as it is, and memcached answers it, worded per
    command; an ms's data block is read and dropped, and the connection goes on.
    (A token over 250 bytes is a format error before any decoding, and then the
    block is read as the next command line, by memcached and the proxy alike:
    the differential corpus has that case, ms-key-251.)"""
    data = (b"mg %s b v\r\nmg %s b q v\r\nms %s 2 b\r\nhi\r\nmd %s b q\r\nma %s b\r\nme %s b\r\nmn\r\n"
            % ((token,) * 6))
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert proxied.count(b"CLIENT_ERROR") == 6, proxied


def test_a_raw_key_in_a_reply_passes_through(twins):
    """memcached 1.6 echoes the decoded key raw in k when mg creates the item (N
    with b): a binary key's LF then stands inside the reply line. Only CRLF ends
    a server's line, so the reply passes as it came and the next ones follow."""
    key = b64(b"line\nfeed")
    data = b"mg %s N30 b k s\r\nmg %s b k v\r\nmg foo v\r\nmn\r\n" % (key, key)
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert proxied.startswith(b"HD kline\nfeed s0 W\r\n"), proxied


def test_a_bad_flag_is_answered_before_a_bad_key_as_in_memcached(twins):
    """memcached checks the flags before it decodes the key: such a request goes to
    a server as it is, and memcached's own answer comes back."""
    data = b"mg !!!! b E5\r\nms !!!! 2 b Z\r\nhi\r\nmd !!!! b x\r\nma Zm9 b x\r\nmn\r\n"
    direct, proxied = both(twins, data)
    assert direct == proxied
    assert b"error decoding key" not in proxied and proxied.count(b"CLIENT_ERROR") == 4


def holders(ms, keys, write):
    """For each key, the index of the one server holding it after write(s, key)
    through the proxy (every server flushed first), asked directly."""
    for m in ms:
        m.mc().cmd(b"flush_all")
    found = []
    for k in keys:
        write(k)
        at = [i for i, m in enumerate(ms) if b"VALUE" in m.mc().cmd(b"get %s" % k.encode())]
        assert len(at) == 1, (k, at)
        found.append(at[0])
    return found


def test_the_proxy_routes_b_keys_by_their_bytes(twins):
    """An item written with b lands on the server an item written with the plain
    key lands on, key by key (asked of each server directly)."""
    _, ms, px = twins
    s = raw_connect(px.port("m"), timeout=10)

    def with_b(k):
        s.sendall(b"ms %s 1 b\r\nB\r\n" % b64(k))
        recv_until(s, b"HD\r\n")

    def plain(k):
        s.sendall(b"set %s 0 0 1\r\nP\r\n" % k.encode())
        recv_until(s, b"STORED\r\n")

    by_b, by_bytes = holders(ms, KEYS, with_b), holders(ms, KEYS, plain)
    s.close()
    assert by_b == by_bytes
    assert len(set(by_b)) > 1, "the keys all went to one server"


def test_pymemcache_reads_what_b_wrote(twins):
    _, _, px = twins
    s = raw_connect(px.port("m"), timeout=10)
    s.sendall(b"".join(b"ms %s 5 b\r\nvalue\r\n" % b64(k) for k in KEYS))
    recv_until(s, b"HD\r\n" * len(KEYS))
    s.close()
    c = px.pymc("m")
    assert c.get_many(KEYS) == {k: b"value" for k in KEYS}
    c.close()
