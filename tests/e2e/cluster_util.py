"""A real Redis Cluster for the tests (redis-server --cluster-enabled yes,
redis-cli --cluster create), and a pipelined load that counts every error
reply and every acknowledged write lost while the cluster changes under it.

Ports come from free_port() with the cluster bus port (port + 10000) free as
well; every process is an Env process, stopped by pid."""

import os
import subprocess
import threading

from conftest import HOST, Resp, RespError, Server, free_port, port_is_free, stop_proc, tail, wait_port, \
    wait_until

NODE_TIMEOUT_MS = 1000


def _crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """redis' keyHashSlot: CRC16 of the key, or of its non-empty {tag}."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return _crc16(key) & 16383


def _cluster_port():
    for _ in range(200):
        p = free_port()
        if p + 10000 < 32768 and port_is_free(p + 10000):
            return p
    raise RuntimeError("no port with a free cluster bus port")


class Cluster:
    """n redis-server nodes in cluster mode; create() makes masters + replicas."""

    def __init__(self, env, n=6):
        self.env = env
        self.nodes = [self.start_node() for _ in range(n)]

    def start_node(self, port=None):
        for _ in range(5):
            p = port or _cluster_port()
            d = os.path.join(self.env.tmp, "node-%d" % p)
            os.makedirs(d, exist_ok=True)
            argv = ["redis-server", "--port", str(p), "--bind", HOST, "--cluster-enabled", "yes",
                    "--cluster-config-file", os.path.join(d, "nodes.conf"),
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
                    "--dir", d, "--daemonize", "no", "--repl-diskless-sync-delay", "0"]
            proc, out = self.env.spawn(argv, "cluster-%d" % p)
            if wait_port(p, proc):
                return Server("redis", p, proc, out)
            stop_proc(proc)
            if port is not None:
                break
        raise RuntimeError("cluster node did not start:\n" + tail(out))

    def create(self, replicas=1):
        addrs = ["%s:%d" % (HOST, n.port) for n in self.nodes]
        r = subprocess.run(["redis-cli", "--cluster", "create"] + addrs +
                           ["--cluster-replicas", str(replicas), "--cluster-yes"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        assert r.returncode == 0, r.stdout.decode()
        self.wait_ok()
        return self

    # -- what the cluster says ------------------------------------------------
    def call(self, node, *args):
        c = Resp(port=node.port, timeout=5)
        try:
            return c.call(*args)
        finally:
            c.close()

    def info(self, node):
        text = self.call(node, "CLUSTER", "INFO").decode()
        return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)

    def info_clients(self, node):
        """connected_clients of node (replication links are not in it)."""
        text = self.call(node, "INFO", "clients").decode()
        return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)["connected_clients"]

    def node_id(self, node):
        return self.call(node, "CLUSTER", "MYID").decode()

    def alive(self):
        return [n for n in self.nodes if n.alive()]

    def slots_view(self, node):
        """{slot range start: (end, master port, [replica ports])} as node sees it."""
        view = {}
        for r in self.call(node, "CLUSTER", "SLOTS"):
            view[r[0]] = (r[1], r[2][1], sorted(x[1] for x in r[3:]))
        return view

    def masters(self):
        """The master nodes that serve slots, as the first live node sees it."""
        view = self.slots_view(self.alive()[0])
        ports = {v[1] for v in view.values()}
        return [n for n in self.alive() if n.port in ports]

    def master_of(self, slot, node=None):
        for start, (end, port, _) in self.slots_view(node or self.alive()[0]).items():
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == port)
        return None

    def replicas_of(self, master):
        """The replicas of master as CLUSTER NODES lists them (CLUSTER SLOTS
        leaves out a replica it still thinks is loading)."""
        mid = self.node_id(master)
        ports = []
        for line in self.call(master, "CLUSTER", "NODES").decode().splitlines():
            f = line.split()
            if "slave" in f[2] and f[3] == mid:
                ports.append(int(f[1].split("@")[0].rsplit(":", 1)[1]))
        return [n for n in self.nodes if n.port in ports]

    def replica_of(self, master):
        """master's first replica, waiting until CLUSTER NODES lists one."""
        return wait_until(lambda: (self.replicas_of(master) or [None])[0], "the master's replica listed")

    def wait_ok(self, timeout=30):
        """Every live node says cluster_state:ok, covers every slot and sees
        the same masters (full agreement, not just one node's view)."""
        def agreed():
            views = []
            for n in self.alive():
                i = self.info(n)
                if i.get("cluster_state") != "ok" or i.get("cluster_slots_ok") != "16384":
                    return False
                views.append({k: v[:2] for k, v in self.slots_view(n).items()})
            return all(v == views[0] for v in views)
        wait_until(agreed, "the cluster to be ok and agree", timeout=timeout, interval=0.1)

    def wait_replicas_synced(self, timeout=30):
        def synced():
            for n in self.alive():
                role = self.call(n, "ROLE")
                if role[0] == b"slave" and role[3] != b"connected":
                    return False
            return True
        wait_until(synced, "every replica linked to its master", timeout=timeout, interval=0.1)

    def wait_epochs_agree(self, slot=None, owner=None, timeout=10):
        """Every live node knows each node's config epoch as that node does
        (and, given a slot, says owner serves it). Until then a slot moved by
        hand can move back or lose its owner: an importing node bumps its epoch
        past the largest it knows of, and a node still holding the last move's
        epoch for the old owner takes that owner's older claims as newer."""
        def agreed():
            if slot is not None and any(getattr(self.master_of(slot, n), "port", None) != owner.port
                                        for n in self.alive()):
                return False
            own, seen = {}, []
            for n in self.alive():
                view = {}
                for line in self.call(n, "CLUSTER", "NODES").decode().splitlines():
                    f = line.split()
                    view[f[0]] = f[6]
                    if "myself" in f[2]:
                        own[f[0]] = f[6]
                seen.append(view)
            return all(v.get(i) == e for v in seen for i, e in own.items())
        wait_until(agreed, "every node to know every config epoch", timeout=timeout, interval=0.05)

    # -- changing it ----------------------------------------------------------
    def move_slot(self, slot, dst, keys_batch=100):
        """Move one slot (with its keys) to dst as redis-cli --cluster does, and
        wait until every node knows (wait_epochs_agree)."""
        self.wait_epochs_agree()
        src = self.master_of(slot)
        if src.port == dst.port:
            return
        src_id, dst_id = self.node_id(src), self.node_id(dst)
        assert self.call(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == b"OK"
        assert self.call(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == b"OK"
        self.migrate_keys(src, dst, slot, keys_batch)
        self.finish_move(slot, dst)
        self.wait_epochs_agree(slot, dst)

    def migrate_keys(self, src, dst, slot, batch=100):
        while True:
            keys = self.call(src, "CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                return
            r = self.call(src, "MIGRATE", HOST, dst.port, "", 0, 5000, "KEYS", *keys)
            assert not isinstance(r, RespError), r

    def finish_move(self, slot, dst):
        dst_id = self.node_id(dst)
        for n in [dst] + [m for m in self.masters() if m.port != dst.port]:
            self.call(n, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def reshard(self, src, dst, nslots):
        r = subprocess.run(["redis-cli", "--cluster", "reshard", "%s:%d" % (HOST, src.port),
                            "--cluster-from", self.node_id(src), "--cluster-to", self.node_id(dst),
                            "--cluster-slots", str(nslots), "--cluster-yes", "--cluster-pipeline", "50"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        assert r.returncode == 0, r.stdout.decode()[-3000:]

    def add_node(self, as_master=True):
        n = self.start_node()
        self.nodes.append(n)
        r = subprocess.run(["redis-cli", "--cluster", "add-node", "%s:%d" % (HOST, n.port),
                            "%s:%d" % (HOST, self.alive()[0].port)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        assert r.returncode == 0, r.stdout.decode()
        wait_until(lambda: all(n.port in [int(l.split()[1].split(":")[1].split("@")[0])
                                          for l in self.call(m, "CLUSTER", "NODES").decode().splitlines()]
                               for m in self.alive()), "every node to know the new one", timeout=20)
        # until it has the whole view it answers CLUSTERDOWN, also to MIGRATE
        wait_until(lambda: self.info(n).get("cluster_state") == "ok", "the new node to serve", timeout=20)
        return n

    def rebalance(self):
        r = subprocess.run(["redis-cli", "--cluster", "rebalance", "%s:%d" % (HOST, self.alive()[0].port),
                            "--cluster-use-empty-masters", "--cluster-pipeline", "50"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        assert r.returncode == 0, r.stdout.decode()[-3000:]

    def direct_get(self, key):
        """GET key from the master that owns its slot, asked directly."""
        return self.call(self.master_of(key_slot(key)), "GET", key)


class Load:
    """Client threads, each on its own proxy connection, sending pipelines of
    SETs (new values) and GETs of its own keys, a pipeline at a time.  Every
    error reply is recorded; a GET that shows an older value than the last
    acknowledged write is a lost write; at the end every key is read back."""

    def __init__(self, port, clients=4, keys=200, pipeline=20, prefix="load", multi=False):
        self.port = port
        self.pipeline = pipeline
        self.multi = multi
        self.keys = [["%s:%d:%d" % (prefix, c, k) for k in range(keys)] for c in range(clients)]
        self.acked = {}   # key -> last acknowledged value
        self.unknown = {}  # key -> values whose SET got an error
        self.errors = []
        self.stale = []
        self.ops = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.broken = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait_ops(self, n, timeout=20):
        target = self.ops + n
        wait_until(lambda: self.ops >= target or self.broken, "the load to make %d requests" % n,
                   timeout=timeout)
        assert not self.broken, self.broken

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(60)

    def _batch(self, i, seq):
        keys = self.keys[i]
        cmds, what = [], []
        for j in range(self.pipeline):
            k = keys[(seq * self.pipeline + j) % len(keys)]
            if j % 2 == 0:
                v = "%d" % seq
                cmds.append(("SET", k, v))
                what.append(("set", k, v))
            else:
                cmds.append(("GET", k))
                what.append(("get", k, None))
        if self.multi:
            # one split MSET over several slots, one MGET of what it wrote
            ks = [keys[(seq * 7 + j) % len(keys)] for j in range(4)]
            cmds.append(("MSET",) + tuple(x for k in ks for x in (k, "m%d" % seq)))
            what.append(("mset", ks, "m%d" % seq))
        return cmds, what

    def _check(self, what, rep):
        kind, k, v = what
        if isinstance(rep, RespError):
            self.errors.append((kind, k, rep.msg))
            if kind in ("set", "mset"):
                for key in (k if kind == "mset" else [k]):
                    self.unknown.setdefault(key, set()).add(v.encode())
            return
        if kind == "set" or kind == "mset":
            for key in (k if kind == "mset" else [k]):
                self.acked[key] = v.encode()
                self.unknown.pop(key, None)
        elif kind == "get":
            want = self.acked.get(k)
            if rep != want and rep not in self.unknown.get(k, ()):
                self.stale.append((k, rep, want))
            elif rep in self.unknown.get(k, ()):
                self.acked[k] = rep
                self.unknown.pop(k, None)

    def _run(self, i):
        try:
            c = Resp(port=self.port, timeout=30)
            seq = 0
            while not self.stopping.is_set():
                cmds, what = self._batch(i, seq)
                reps = c.pipeline(cmds)
                with self.lock:
                    for w, r in zip(what, reps):
                        self._check(w, r)
                    self.ops += len(cmds)
                seq += 1
        except Exception as e:  # a closed connection, a timeout: the test fails
            self.broken.append(repr(e))

    def verify(self, read):
        """Read every key with read(key): the acknowledged value must be there
        (or a value whose SET got an error). Returns the keys that are not."""
        lost = []
        for keys in self.keys:
            for k in keys:
                if k not in self.acked and k not in self.unknown:
                    continue
                got = read(k)
                if got != self.acked.get(k) and got not in self.unknown.get(k, ()):
                    lost.append((k, got, self.acked.get(k)))
        return lost
