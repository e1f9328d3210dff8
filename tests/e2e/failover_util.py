"""A workload that sees every lost write: client threads, each on its own
connection, loop over keys of their own: GET (checked against what was last
acknowledged) then SET of a new value.  Used by the failover tests to count
acknowledged writes lost and errors while sentinels move a group's master."""

import threading
import time

from conftest import Resp, RespError


class KeyState:
    """What a key may hold: the last acknowledged value, or one of the values
    whose SET got an error (its outcome is unknown)."""

    def __init__(self):
        self.acked = None
        self.unknown = set()

    def possible(self, v):
        return v == self.acked or v in self.unknown

    def saw(self, v):
        if v in self.unknown:  # that SET did happen
            self.acked = v
            self.unknown.clear()


class Writers:
    def __init__(self, port, keys_by_client, timeout=20):
        self.port = port
        self.keys = keys_by_client
        self.timeout = timeout
        self.state = {k: KeyState() for keys in keys_by_client for k in keys}
        self.errors = []  # (client, command, key, message, monotonic time)
        self.stale = []  # (key, got, acknowledged): an acknowledged write lost
        self.ops = 0
        self.max_latency = 0.0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(len(keys_by_client))]
        self.lock = threading.Lock()
        self.failed = []  # a client that broke (closed connection, timeout)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait_ops(self, n, timeout=10):
        """Until n more requests were answered (the clients make progress)."""
        target = self.ops + n
        deadline = time.monotonic() + timeout
        while self.ops < target and time.monotonic() < deadline and not self.failed:
            time.sleep(0.01)
        return self.ops >= target

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 5)

    def _call(self, c, *args):
        t0 = time.monotonic()
        r = c.call(*args)
        dt = time.monotonic() - t0
        with self.lock:
            self.ops += 1
            self.max_latency = max(self.max_latency, dt)
        return r

    def _run(self, i):
        c = Resp(port=self.port, timeout=self.timeout)
        seq = 0
        try:
            while not self.stopping.is_set():
                for k in self.keys[i]:
                    if self.stopping.is_set():
                        break
                    self._get_then_set(c, i, k, seq)
                    seq += 1
        except Exception as e:  # the test fails on it: a client must never break
            self.failed.append((i, repr(e)))
        finally:
            c.close()

    def _get_then_set(self, c, i, k, seq):
        st = self.state[k]
        got = self._call(c, "GET", k)
        if isinstance(got, RespError):
            self.errors.append((i, "GET", k, got.msg, time.monotonic()))
        else:
            v = got.decode() if got is not None else None
            if not st.possible(v):
                self.stale.append((k, v, st.acked))
            st.saw(v)
        value = "c%d-%d" % (i, seq)
        r = self._call(c, "SET", k, value)
        if r == b"OK":
            st.acked = value
            st.unknown.clear()
        else:
            self.errors.append((i, "SET", k, r.msg if isinstance(r, RespError) else repr(r),
                                time.monotonic()))
            st.unknown.add(value)

    def lost_on(self, server, keys=None):
        """Keys whose value on server is neither the acknowledged one nor one of
        unknown outcome: acknowledged writes that did not survive."""
        r = server.client()
        lost = []
        for k in keys if keys is not None else self.state:
            st = self.state[k]
            if st.acked is None and not st.unknown:
                continue
            v = r.get(k)
            v = v.decode() if v is not None else None
            if not st.possible(v):
                lost.append((k, v, st.acked))
        return lost

    def acked_count(self):
        return sum(1 for st in self.state.values() if st.acked is not None)
