"""A client's pipelined requests run in the order it sent them, also where the
proxy moves the client to another server connection in the middle of the
pipeline: HELLO 3 / HELLO 2 (each protocol has its connections), the start of
a WATCH and its end (EXEC, DISCARD, UNWATCH, RESET: the watch had a connection
of the client's own), its first SUBSCRIBE (a connection of its own too).

Each test puts a slow stretch before the switch: scripts that each run about a
millisecond in redis, each padded to the size redis reads from a connection at
once, so redis runs one per turn of its loop and serves its other connections
between them. A request sent on another connection after the switch would run
long before the client's earlier requests; the proxy holds it back until they
are answered. Every test compares with redis itself, given the same bytes."""

import time

import pytest

from conftest import encode_command, redis_pool

SLOW = "local i = 0 while i < 100000 do i = i + 1 end return 1"
PAD = "x" * 16384
SLOW_N = 100


@pytest.fixture(scope="module")
def rig(menv):
    direct = menv.redis()
    server = menv.redis()
    px = menv.proxy({"one": redis_pool([server])})
    return direct, server, px


def _slow(key="{k}slow"):
    """Requests that keep redis busy on the connection they go over."""
    return [("EVAL", SLOW, "1", key, PAD)] * SLOW_N


def _run(conn, commands):
    conn.send(b"".join(encode_command(*c) for c in commands))
    return [conn.read_reply() for _ in commands]


def _both(rig, setup, commands):
    """The replies (after the slow stretch) of redis and of the proxy."""
    direct, server, px = rig
    got = []
    for target in (direct, px):
        for s in (direct, server):
            s.client().flushall()
        conn = target.resp()
        conn.settimeout(30)
        try:
            if setup:
                _run(conn, setup)
            got.append(_run(conn, _slow() + commands)[SLOW_N:])
        finally:
            conn.close()
    return got


@pytest.mark.parametrize("first,then", [(2, 3), (3, 2)])
def test_a_request_after_hello_does_not_overtake_the_earlier_ones(rig, first, then):
    setup = [("HELLO", str(first))]
    commands = [("SET", "{k}a", "v1"), ("HELLO", str(then)), ("GET", "{k}a")]
    want, got = _both(rig, setup, commands)
    assert want[-1] == b"v1"
    assert got[-1] == want[-1]


def test_a_watch_does_not_overtake_the_earlier_requests(rig):
    commands = [("SET", "{k}a", "v1"), ("WATCH", "{k}a"), ("GET", "{k}a"), ("MULTI",),
                ("GET", "{k}a"), ("EXEC",)]
    want, got = _both(rig, None, commands)
    assert want == [b"OK", b"OK", b"v1", b"OK", b"QUEUED", [b"v1"]]
    assert got == want


@pytest.mark.parametrize("end", [[("MULTI",), ("EXEC",)], [("MULTI",), ("DISCARD",)],
                                 [("UNWATCH",)], [("RESET",)]],
                         ids=["exec", "discard", "unwatch", "reset"])
def test_a_request_after_a_watch_ends_does_not_overtake_the_watched_ones(rig, end):
    # the slow stretch goes over the watch's connection, the GET after its end
    # over the shared one
    setup = [("WATCH", "{k}a")]
    commands = [("SET", "{k}a", "v1")] + end + [("GET", "{k}a")]
    want, got = _both(rig, setup, commands)
    assert want[-1] == b"v1"
    assert got == want


def test_a_first_subscribe_does_not_overtake_an_earlier_publish(rig):
    direct, server, px = rig
    for target in (direct, px):
        server.client().flushall()
        conn = target.resp()
        conn.settimeout(30)
        try:
            got = _run(conn, _slow() + [("PUBLISH", "ch", "early"), ("SUBSCRIBE", "ch")])[SLOW_N:]
            # redis: nobody listened when it was published
            assert got == [0, [b"subscribe", b"ch", 1]], target
            time.sleep(0.3)
            assert conn.read_available(0.3) == b"", target
        finally:
            conn.close()


def _frame_end(b, i):
    """The end of the RESP2/RESP3 frame starting at b[i], or -1 if incomplete."""
    nl = b.find(b"\r\n", i)
    if nl < 0:
        return -1
    t, head, end = b[i:i + 1], b[i + 1:nl], nl + 2
    if t in b"$=!" and head != b"-1":
        end += int(head) + 2
        return end if end <= len(b) else -1
    if t in b"*~>%|" and head != b"-1":
        for _ in range(int(head) * (2 if t in b"%|" else 1)):
            end = _frame_end(b, end)
            if end < 0:
                return -1
        return end
    return end


def _raw_replies(conn, n):
    """The next n replies, each as the bytes it came in."""
    buf, out = conn.buf, []
    conn.buf = b""
    while len(out) < n:
        end = _frame_end(buf, 0)
        if end < 0:
            conn._fill()
            buf, conn.buf = buf + conn.buf, b""
            continue
        out.append(buf[:end])
        buf = buf[end:]
    conn.buf = buf
    return out


# what a HELLO answers names the server: not compared
HELLOS = [
    ["WATCH {k}a", "HELLO 3", "GET {k}a", "MGET {k}a {k}b", "MULTI", "GET {k}a", "EXEC"],
    ["HELLO 3", "WATCH {k}a", "HELLO 2", "GET {k}a", "MULTI", "GET {k}a", "EXEC"],
    ["HELLO 3", "WATCH {k}a", "UNWATCH", "HELLO 2", "WATCH {k}a", "GET {k}a"],
    ["HELLO 3", "WATCH {k}a", "RESET", "WATCH {k}a", "GET {k}a"],
    ["WATCH {k}a", "UNWATCH", "HELLO 3", "WATCH {k}a", "GET {k}a"],
    ["SUBSCRIBE {k}ch", "RESET", "GET {k}a"],
    ["PSUBSCRIBE {k}p*", "RESET", "GET {k}a"],
    ["SUBSCRIBE {k}ch", "UNSUBSCRIBE {k}ch", "RESET", "GET {k}a"],
    ["HELLO 3", "SUBSCRIBE {k}ch", "HELLO 2", "PING"],
    ["HELLO 3", "SUBSCRIBE {k}ch", "UNSUBSCRIBE {k}ch", "HELLO 2", "GET {k}a"],
]


@pytest.mark.parametrize("words", HELLOS, ids=[" ; ".join(w) for w in HELLOS])
def test_the_client_own_connections_follow_its_protocol_and_its_reset(rig, words):
    """WATCH and SUBSCRIBE give the client connections of its own: with a HELLO
    or a RESET in the same pipeline (the whole sequence in one write), every
    reply is the one redis gives, byte for byte."""
    direct, server, px = rig
    commands = [w.split() for w in words]
    got = []
    for target in (direct, px):
        for s in (direct, server):
            s.client().flushall()
        conn = target.resp()
        try:
            conn.send(b"".join(encode_command(*c) for c in commands))
            replies = _raw_replies(conn, len(commands))
            got.append([r for c, r in zip(commands, replies) if c[0] != "HELLO"])
        finally:
            conn.close()
    assert got[1] == got[0]


def test_a_message_comes_in_the_protocol_the_subscriber_speaks_now(rig):
    """A RESP3 subscriber that says HELLO 2 gets its messages as RESP2 arrays
    (its subscription's connection still speaks RESP3: pushes)."""
    direct, server, px = rig
    got = []
    for target in (direct, px):
        conn = target.resp()
        try:
            conn.send(encode_command("HELLO", "3") + encode_command("SUBSCRIBE", "{k}ch") +
                      encode_command("HELLO", "2"))
            assert _raw_replies(conn, 3)[1] == b">3\r\n$9\r\nsubscribe\r\n$5\r\n{k}ch\r\n:1\r\n"
            assert target.resp().call("PUBLISH", "{k}ch", "hi") == 1
            got.append(_raw_replies(conn, 1)[0])
        finally:
            conn.close()
    assert got[0] == b"*3\r\n$7\r\nmessage\r\n$5\r\n{k}ch\r\n$2\r\nhi\r\n"
    assert got[1] == got[0]


def _behind_a_publish(a, busy, pub, request, n):
    """The server busy for a while, a PUBLISH to {k}ch waiting behind it, then
    the subscriber a's request: a's next n replies, as bytes."""
    busy.send(encode_command("EVAL", SLOW.replace("100000", "30000000"), "1", "{k}x"))
    time.sleep(0.05)
    pub.send(encode_command("PUBLISH", "{k}ch", "m"))
    time.sleep(0.05)
    a.send(request)
    got = _raw_replies(a, n)
    assert busy.read_reply() == 1 and pub.read_reply() == 1
    assert a.read_available(0.3) == b""
    return got


def test_a_message_sent_before_an_unsubscribe_comes_before_its_confirmation(rig):
    """A message the server sent before it took the client's UNSUBSCRIBE comes
    before the confirmation, as from redis; behind it (and behind the replies
    to later requests) a RESP2 client, no longer subscribed, would read it as
    the reply to its next request."""
    direct, server, px = rig
    got = []
    for target in (direct, px):
        a, busy, pub = target.resp(), target.resp(), target.resp()
        try:
            assert _run(a, [("SUBSCRIBE", "{k}ch")]) == [[b"subscribe", b"{k}ch", 1]]
            # the UNSUBSCRIBE waits behind the PUBLISH
            got.append(_behind_a_publish(a, busy, pub, encode_command("UNSUBSCRIBE", "{k}ch") +
                                         encode_command("GET", "{k}a"), 3))
        finally:
            for x in (a, busy, pub):
                x.close()
    assert got[0] == [b"*3\r\n$7\r\nmessage\r\n$5\r\n{k}ch\r\n$1\r\nm\r\n",
                      b"*3\r\n$11\r\nunsubscribe\r\n$5\r\n{k}ch\r\n:0\r\n", b"$-1\r\n"]
    assert got[1] == got[0]


@pytest.mark.parametrize("sub", [("SUBSCRIBE", "{k}ch"), ("PSUBSCRIBE", "{k}c*")], ids=["channel", "pattern"])
def test_a_publish_after_a_subscribe_in_a_pipeline_is_heard_by_it(rig, sub):
    """RESP3: SUBSCRIBE then PUBLISH in one write: the PUBLISH runs after the
    subscription, as on redis (it counts the client and the message comes);
    and after the UNSUBSCRIBE it no longer does."""
    direct, server, px = rig
    for target in (direct, px):
        c = target.resp()
        try:
            unsub = "UNSUBSCRIBE" if sub[0] == "SUBSCRIBE" else "PUNSUBSCRIBE"
            replies = _run(c, [("HELLO", "3"), sub, ("PUBLISH", "{k}ch", "m")]) + [c.read_reply()]
            # the message is a push: redis sends it before the PUBLISH's reply, the
            # proxy (another connection heard it) may send it after
            assert 1 in replies[2:], (target, replies)
            assert [r for r in replies[2:] if r != 1][0][0] in (b"message", b"pmessage")
            assert _run(c, [(unsub, sub[1]), ("PUBLISH", "{k}ch", "m")])[1] == 0, target
        finally:
            c.close()


def test_a_subscription_change_after_a_publish_in_a_pipeline_does_not_overtake_it(rig):
    """RESP3: PUBLISH then (UN)SUBSCRIBE of its channel in one write: the
    PUBLISH runs first, as on redis: not heard by the SUBSCRIBE after it, and
    heard by the subscription the UNSUBSCRIBE after it ends."""
    direct, server, px = rig
    for target in (direct, px):
        c = target.resp()
        try:
            _run(c, [("HELLO", "3"), ("SUBSCRIBE", "{k}x")])
            got = _run(c, [("PUBLISH", "{k}ch", "m"), ("SUBSCRIBE", "{k}ch")])
            assert got == [0, [b"subscribe", b"{k}ch", 2]], (target, got)
            assert c.read_available(0.3) == b"", target  # no message: nobody listened then
            replies = _run(c, [("PUBLISH", "{k}ch", "m"), ("UNSUBSCRIBE", "{k}ch")]) + [c.read_reply()]
            assert [b"message", b"{k}ch", b"m"] in replies and 1 in replies, (target, replies)
            assert [b"unsubscribe", b"{k}ch", 1] in replies[1:], (target, replies)
        finally:
            c.close()


@pytest.mark.parametrize("resp", [2, 3])
def test_a_ping_while_subscribed_comes_after_the_messages_before_it(rig, resp):
    """A subscriber's PING is answered behind the messages published before it,
    as on redis, where both come over its one connection: a client uses that to
    know it heard everything up to then. The proxy answered the PING at once,
    ahead of a message its server was about to send."""
    direct, server, px = rig
    got = []
    for target in (direct, px):
        a, busy, pub = target.resp(), target.resp(), target.resp()
        try:
            if resp == 3:
                a.call("HELLO", "3")
            a.send(encode_command("SUBSCRIBE", "{k}ch"))
            assert _raw_replies(a, 1)[0].endswith(b"subscribe\r\n$5\r\n{k}ch\r\n:1\r\n")
            # so does the PING, where it reaches the server
            got.append(_behind_a_publish(a, busy, pub, encode_command("PING", "p"), 2))
        finally:
            for x in (a, busy, pub):
                x.close()
    push = b">" if resp == 3 else b"*"
    pong = b"$1\r\np\r\n" if resp == 3 else b"*2\r\n$4\r\npong\r\n$1\r\np\r\n"
    assert got[0] == [push + b"3\r\n$7\r\nmessage\r\n$5\r\n{k}ch\r\n$1\r\nm\r\n", pong]
    assert got[1] == got[0]


def test_a_ping_after_the_subscriber_own_publish_comes_after_its_message(rig):
    """RESP3: PUBLISH to a channel the client listens on, then PING, in one
    write: the pong comes after the message, as on redis (the PUBLISH's reply
    may come before the message through the proxy, as the README says). The
    PING went over the subscribed connection before the PUBLISH had run."""
    direct, server, px = rig
    for target in (direct, px):
        c = target.resp()
        try:
            _run(c, [("HELLO", "3"), ("SUBSCRIBE", "{k}ch")])
            c.send(encode_command("PUBLISH", "{k}ch", "self") + encode_command("PING", "p"))
            got = _raw_replies(c, 3)
            assert got[2] == b"$1\r\np\r\n", (target, got)
            assert sorted(got[:2]) == [b":1\r\n", b">3\r\n$7\r\nmessage\r\n$5\r\n{k}ch\r\n$4\r\nself\r\n"], (target, got)
            assert c.read_available(0.2) == b"", target
        finally:
            c.close()
