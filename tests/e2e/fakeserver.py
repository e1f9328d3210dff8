"""A scriptable fake backend, for what a real redis-server or memcached cannot
do: answer garbage, half a reply then close, a reply in 1-byte pieces, or never;
and record every byte the proxy sends, so a test can check them exactly.  Where
a real server can do the job, tests use the real one (conftest's Env).

    fs = FakeServer("redis", answer=lambda req, conn: [b"+OK\\r\\n"]).start()
    px = env.proxy({"a": redis_pool([fs.addr])})
    ...
    fs.wait_requests(1)
    assert fs.conns[0].received == b"*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n"
    fs.stop()

answer(req, conn) is called for each complete request, framed by the protocol
(RESP array or inline line; memcached line plus data block), and returns the
steps of the reply: bytes are sent as they are, a number is a pause in seconds
(the script's timing, e.g. one byte every 5 ms), CLOSE closes the connection.
An empty list never answers.  The server listens on 127.0.0.1, on a port the
kernel picks, and runs in threads of the test process: stop() ends them.
"""

import collections
import random
import socket
import threading

from conftest import HOST, wait_until

CLOSE = object()

MC_STORAGE = {b"set", b"add", b"replace", b"append", b"prepend", b"cas"}


def _line(buf, start=0):
    """End of the CRLF-terminated line at start (index after CRLF), or -1."""
    i = buf.find(b"\r\n", start)
    return -1 if i < 0 else i + 2


def frame_redis(buf):
    """Length of the first complete request in buf (RESP array or inline), 0 if incomplete."""
    end = _line(buf)
    if end < 0:
        return 0
    if buf[:1] != b"*":
        return end  # inline command
    n, pos = int(buf[1:end - 2]), end
    for _ in range(max(n, 0)):
        head = _line(buf, pos)
        if head < 0:
            return 0
        pos = head + int(buf[pos + 1:head - 2]) + 2
        if pos > len(buf):
            return 0
    return pos


def frame_memcache(buf):
    """Length of the first complete memcached request in buf, 0 if incomplete."""
    end = _line(buf)
    if end < 0:
        return 0
    words = buf[:end - 2].split()
    size = None
    if words and words[0] in MC_STORAGE and len(words) >= 5:
        size = int(words[4])
    elif words and words[0] == b"ms" and len(words) >= 3:
        size = int(words[2])
    if size is None:
        return end
    return end + size + 2 if len(buf) >= end + size + 2 else 0


class Conn:
    """One connection the proxy made: every byte it sent, its requests, its fate."""

    def __init__(self, sock, index):
        self.sock, self.index = sock, index
        self.received = b""
        self.requests = []
        self.closed_by_peer = False  # the proxy closed (or reset) it
        self.closed_by_us = False  # a CLOSE step, or stop()


class FakeServer:
    def __init__(self, proto="redis", answer=None):
        self.proto = proto
        self.frame = frame_redis if proto == "redis" else frame_memcache
        self.answer = answer or (lambda req, conn: [])
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.errors = []  # exceptions of the script: a test reads them
        self._lock = threading.Lock()
        self._stopping = False
        self._threads = [threading.Thread(target=self._accept, daemon=True)]

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    def start(self):
        self._threads[0].start()
        return self

    def stop(self):
        self._stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for c in list(self.conns):
            self._close(c, by_us=True)
        for t in list(self._threads):
            t.join(5)

    # -- what the proxy sent
    def requests(self):
        """Every request received so far, connection by connection in accept order."""
        return [r for c in list(self.conns) for r in c.requests]

    def wait_requests(self, n, what=None, timeout=5.0):
        """Wait until n requests arrived in all; returns them."""
        return wait_until(lambda: len(self.requests()) >= n and self.requests(),
                          what or "%d request(s) at the fake server %s" % (n, self.addr), timeout)

    def wait_received(self, data, conn=0, timeout=5.0):
        """Wait until connection `conn` received at least len(data) bytes; returns them."""
        wait_until(lambda: len(self.conns) > conn and len(self.conns[conn].received) >= len(data),
                   "%d bytes on connection %d of %s" % (len(data), conn, self.addr), timeout)
        return self.conns[conn].received

    # -- the threads
    def _accept(self):
        while not self._stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                c = Conn(s, len(self.conns))
                self.conns.append(c)
                t = threading.Thread(target=self._serve, args=(c,), daemon=True)
                self._threads.append(t)
            t.start()

    def _close(self, c, by_us):
        if not (c.closed_by_us or c.closed_by_peer):
            c.closed_by_us = by_us
            c.closed_by_peer = not by_us
        try:
            c.sock.shutdown(socket.SHUT_RDWR)  # wakes the connection's thread in recv()
        except OSError:
            pass
        c.sock.close()

    def _serve(self, c):
        buf = b""
        while not self._stopping:
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._close(c, by_us=self._stopping or c.closed_by_us)
                return
            c.received += data
            buf += data
            while True:
                n = self.frame(buf)
                if n == 0:
                    break
                req, buf = buf[:n], buf[n:]
                c.requests.append(req)
                if not self._play(c, req):
                    return

    def _play(self, c, req):
        """Run the script's steps for req; False once the connection is closed."""
        try:
            steps = self.answer(req, c)
        except Exception as e:  # a broken script must not pass for a proxy fault
            self.errors.append(e)
            steps = [CLOSE]
        for step in steps:
            try:
                if step is CLOSE:
                    self._close(c, by_us=True)
                    return False
                if isinstance(step, (int, float)):
                    threading.Event().wait(step)  # the script's own pacing
                else:
                    c.sock.sendall(step)
            except OSError:
                self._close(c, by_us=False)
                return False
        return True


def drip(data, pause=0.005):
    """Steps sending data one byte at a time, `pause` s apart."""
    steps = []
    for i in range(len(data)):
        steps += [data[i:i + 1], pause]
    return steps[:-1]


# --------------------------------------------------------------------------- misbehaving backend

class MisbehavingServer(FakeServer):
    """A backend that is neither redis nor memcached, for the fault tests.

    Each accepted connection gets the next mode of `modes`, in turn:
      garbage  every request is answered with a line of seeded random bytes that
               no RESP / memcached reply starts with (the connection stays open);
      half     the first request is answered with half a reply (a bulk / VALUE
               header announcing 100 bytes and 10 of them), then the connection closes;
      close    the first request closes the connection without a byte.
    `served` counts the requests answered in each mode."""

    def __init__(self, proto="redis", modes=("garbage", "half", "close"), seed=1):
        super().__init__("redis" if proto == "redis" else "memcache", self._misbehave)
        self.modes = tuple(modes)
        self.rng = random.Random(seed)
        self.served = collections.Counter()

    def _garbage(self):
        body = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(4, 40)))
        return b"@" + body.replace(b"\n", b"?") + b"\r\n"

    def _half(self):
        if self.proto == "redis":
            return b"$100\r\n" + b"h" * 10
        return b"VALUE key 0 100\r\n" + b"h" * 10

    def _misbehave(self, req, conn):
        mode = self.modes[conn.index % len(self.modes)]
        self.served[mode] += 1
        if mode == "garbage":
            return [self._garbage()]
        if mode == "half":
            return [self._half(), CLOSE]
        return [CLOSE]
