#!/usr/bin/python3
"""bench: every figure of issue 11, ours vs Debian's twemproxy vs direct, from one command.

    bench/run.sh                      # every section, the default (~23 minutes on 2 cores)
    bench/run.sh throughput latency   # only these sections

Sections (bench/README.md says what each figure means):
  throughput    requests/s and each proxy's CPU per request, ROUNDS rounds, medians [min-max]
  instructions  instructions per request of the proxy process (callgrind)
  syscalls      system calls per request of the proxy process (strace -c -f)
  latency       p50/p99/p99.9 added by the proxy at 50% and 90% of the saturating load
  workers       ours with N workers: CPU and instructions per request, backend connections
  allocs        ours' allocator calls per request after warm-up, and their call sites

Everything runs on 127.0.0.1 with free ports, every process it starts is stopped by pid
(also on Ctrl-C), every load has a time limit, temporary files live in one mktemp dir.
Knobs are environment variables, listed in KNOBS below.
"""

import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["throughput", "instructions", "syscalls", "latency", "workers", "allocs"]

KNOBS = {
    "OURS": "./nutcracker",           # our binary
    "TWEM": "/usr/sbin/nutcracker",   # Debian's twemproxy 0.5
    "URING": "0",                     # 1: one more target, ours on --event-backend=io_uring
    "ROUNDS": "5",                    # throughput rounds (medians and spread over them)
    "N": "100000",                    # requests per redis-benchmark run
    "N_PIPELINED": "800000",          # per run with -P 16: as long a run, CPU ticks (10 ms) as fine
    "C": "50",                        # redis-benchmark and loadgen connections
    "R": "100000",                    # key space
    "MC_SECONDS": "3",                # seconds per memcaslap run (throughput)
    "CG_N": "20000",                  # requests per workload under callgrind
    "ST_N": "50000",                  # requests per workload under strace
    "LAT_SECONDS": "3",               # seconds per latency run (the first second is warm-up)
    "LAT_ROUNDS": "3",                # latency runs per target and load (medians over them)
    "WORKERS_LIST": "1 2 4",          # worker counts of the workers section
    "W_N": "100000",                  # requests per workload in the workers section
    "ALLOC_N": "20000",               # requests per workload counted in the allocs section
    "OURS_FP": "build/fp/nutcracker",  # frame-pointer build for allocation call sites
}
CFG = {k: os.environ.get(k, v) for k, v in KNOBS.items()}
for _k in ("OURS", "TWEM", "OURS_FP"):  # the processes run in the temporary directory
    CFG[_k] = os.path.abspath(CFG[_k])
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# label, kind, redis-benchmark args, the test name redis-benchmark prints
WORKLOADS = [
    ("redis GET -P 1", "redis", ["-t", "get", "-P", "1"], "GET"),
    ("redis SET -P 1", "redis", ["-t", "set", "-P", "1"], "SET"),
    ("redis GET -P 16", "redis", ["-t", "get", "-P", "16"], "GET"),
    ("redis SET -P 16", "redis", ["-t", "set", "-P", "16"], "SET"),
    ("redis MSET 10 keys -P 1", "redis", ["-t", "mset", "-P", "1"], "MSET (10 keys)"),
    ("memcached get/set 9:1", "mc", None, None),
]


def log(msg):
    print("  .. " + msg, file=sys.stderr, flush=True)


def free_ports(n):
    out = []
    while len(out) < n:
        p = random.randrange(12000, 32000)
        s = socket.socket()
        try:
            s.bind((HOST, p))
            if p not in out:
                out.append(p)
        except OSError:
            pass
        finally:
            s.close()
    return out


def wait_port(port, proc=None, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            out = ""
            if getattr(proc, "out_path", None):
                with open(proc.out_path, errors="replace") as f:
                    out = "".join(f.readlines()[-15:])
            raise RuntimeError("%s exited before listening on %d:\n%s" % (proc.args, port, out))
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %d" % port)


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def median_spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return statistics.median(xs), min(xs), max(xs)


class Procs:
    """Every process we start; stopped by pid, TERM then KILL."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.live = []

    def start(self, argv, name, env=None):
        path = os.path.join(self.tmp, name + ".out")
        with open(path, "wb") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=self.tmp)
        p.out_path = path
        self.live.append(p)
        return p

    def stop(self, p, timeout=30.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p, timeout=5.0)


class Bench:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = Procs(tmp)
        self.rports = []
        self.mports = []
        self.targets = {}  # name -> {"rport", "mport", "proc"} (direct: proc None)

    # ---- processes -------------------------------------------------------
    def start_backends(self):
        ports = free_ports(8)
        self.rports, self.mports = ports[:4], ports[4:]
        servers = []
        for p in self.rports:
            servers.append(self.procs.start(["redis-server", "--port", str(p), "--bind", HOST, "--save", "",
                              "--appendonly", "no", "--daemonize", "no", "--dir", self.tmp,
                              "--dbfilename", "dump-%d.rdb" % p], "redis-%d" % p))
        user = ["-u", "root"] if os.getuid() == 0 else []
        for p in self.mports:
            servers.append(self.procs.start(["memcached", "-l", HOST, "-p", str(p), "-U", "0", "-t", "1",
                                             "-m", "256"] + user, "memcached-%d" % p))
        for p in self.rports + self.mports:
            wait_port(p)
        # direct: the first server of each kind; its CPU per request under the same load is the
        # floor any process answering these clients pays (their reads and writes in the kernel)
        self.targets["direct"] = {"rport": self.rports[0], "mport": self.mports[0], "proc": None,
                                  "servers": {"redis": servers[0], "mc": servers[len(self.rports)]}}

    def conf(self, name, rport, mport, workers=0):
        lines = []
        for pool, port, redis, backends in (("bench_redis", rport, True, self.rports),
                                            ("bench_memcache", mport, False, self.mports)):
            lines += [pool + ":", "  listen: %s:%d" % (HOST, port), "  hash: fnv1a_64",
                      "  distribution: ketama", "  redis: %s" % ("true" if redis else "false"),
                      "  servers:"]
            lines += ["   - %s:%d:1" % (HOST, p) for p in backends]
        if workers:
            lines = ["global:", "  worker_processes: %d" % workers, "pools:"] + ["  " + l for l in lines]
        path = os.path.join(self.tmp, name + ".yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start_proxy(self, name, binary, extra=(), wrapper=(), env=None, workers=0):
        rport, mport, sport = free_ports(3)
        conf = self.conf(name, rport, mport, workers)
        argv = list(wrapper) + [binary, "-c", conf, "-s", str(sport), "-a", HOST, "-v", "4",
                                "-o", os.path.join(self.tmp, name + ".log")] + list(extra)
        proc = self.procs.start(argv, name, env=env)
        timeout = 120.0 if wrapper else 20.0
        wait_port(rport, proc, timeout)
        wait_port(mport, proc, timeout)
        t = {"rport": rport, "mport": mport, "proc": proc, "name": name}
        return t

    def start_proxies(self):
        self.targets["twemproxy"] = self.start_proxy("twemproxy", CFG["TWEM"])
        self.targets["ours"] = self.start_proxy("ours", CFG["OURS"])
        if CFG["URING"] == "1":
            self.targets["ours io_uring"] = self.start_proxy("ours-uring", CFG["OURS"],
                                                             ["--event-backend=io_uring"])

    # ---- loads -----------------------------------------------------------
    def load(self, wl, t, n=None, seconds=None, clients=None):
        """Run workload wl against target t: (requests, requests per second).
        clients: redis-benchmark's connections (default C; memcaslap keeps its 32)."""
        label, kind, args, name = wl
        if kind == "redis":
            n = n or int(CFG["N"] if args[args.index("-P") + 1] == "1" else CFG["N_PIPELINED"])
            argv = ["redis-benchmark", "-h", HOST, "-p", str(t["rport"]), "-n", str(n),
                    "-c", str(clients or CFG["C"]),
                    "-r", CFG["R"], "-q", "--csv"] + args
            out = run_out(argv, 600)
            for line in out.splitlines():
                cells = [c.strip('"') for c in line.split('","')]
                if cells and cells[0].strip('"') == name:
                    return n, float(cells[1].strip('"'))
            raise RuntimeError("redis-benchmark printed no %s row:\n%s" % (name, out))
        argv = ["memcaslap", "-s", "%s:%d" % (HOST, t["mport"]), "-T", "2", "-c", "32", "-X", "64"]
        argv += ["-t", "%ss" % (seconds or CFG["MC_SECONDS"])] if n is None else ["-x", str(n)]
        out = run_out(argv, 600)
        m = re.findall(r"Run time: ([0-9.]+)s Ops: (\d+) TPS: (\d+)", out)
        if not m:
            raise RuntimeError("memcaslap printed no summary:\n" + out)
        return int(m[-1][1]), float(m[-1][2])

    def warm(self, t):
        """Fill the key space once, so GETs find values."""
        self.load(WORKLOADS[1], t, n=20000)
        self.load(WORKLOADS[5], t, n=20000)


def run_out(argv, timeout):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=timeout)
    return r.stdout.decode("utf-8", "replace")


def table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(title)
    fmt = "  ".join(("%%-%ds" if i == 0 else "%%%ds") % w for i, w in enumerate(widths))
    print(fmt % tuple(header))
    print(fmt % tuple("-" * w for w in widths))
    for r in rows:
        print(fmt % tuple(r))
    print()


def fmt_ms(m, lo, hi, fmt="%.0f"):
    if m is None:
        return "n/a"
    return (fmt + " [" + fmt + "-" + fmt + "]") % (m, lo, hi)


# ---- throughput and CPU per request ---------------------------------------
def kfmt(x):
    return "%.1fk" % (x / 1000.0) if x >= 10000 else "%.0f" % x


def spread(xs, fmt):
    m, lo, hi = median_spread(xs)
    if m is None:
        return "n/a"
    return "%s [%s-%s]" % (fmt(m), fmt(lo), fmt(hi))


def ratios(a, b):
    return [x / y for x, y in zip(a, b) if x is not None and y]


def section_throughput(b):
    names = list(b.targets)  # direct, twemproxy, ours[, ours io_uring]
    rounds = int(CFG["ROUNDS"])
    rps = {}
    cpu = {}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # drift hits every target alike
        for wl in WORKLOADS:
            for name in order:
                t = b.targets[name]
                proc = t["proc"] or t["servers"][wl[1]]
                pid = proc.pid
                c0 = cpu_ticks(pid) if pid else 0
                n, rate = b.load(wl, t)
                rps.setdefault((wl[0], name), []).append(rate)
                if pid:
                    cpu.setdefault((wl[0], name), []).append((cpu_ticks(pid) - c0) * 1e6 / CLK_TCK / n)
        log("throughput: round %d of %d done" % (r + 1, rounds))
    proxies = names[1:]
    uring = "ours io_uring" in proxies
    hdr = ["workload"] + names + ["ours/twemproxy", "ours/direct"]
    if uring:
        hdr.append("io_uring/twemproxy")
    rows = []
    for wl in WORKLOADS:
        row = [wl[0]] + [spread(rps[(wl[0], n)], kfmt) for n in names]
        row.append(spread(ratios(rps[(wl[0], "ours")], rps[(wl[0], "twemproxy")]), lambda x: "%.2f" % x))
        row.append(spread(ratios(rps[(wl[0], "ours")], rps[(wl[0], "direct")]), lambda x: "%.2f" % x))
        if uring:
            row.append(spread(ratios(rps[(wl[0], "ours io_uring")], rps[(wl[0], "twemproxy")]),
                              lambda x: "%.2f" % x))
        rows.append(row)
    table("throughput, requests/s: median of %d rounds [min-max]; ratios per round" % rounds, hdr, rows)
    proxies = ["direct"] + proxies
    hdr = ["workload", "direct (server)"] + proxies[1:] + ["ours/twemproxy"]
    if uring:
        hdr += ["io_uring/twemproxy", "io_uring/epoll"]
    rows = []
    for wl in WORKLOADS:
        row = [wl[0]] + [spread(cpu[(wl[0], n)], lambda x: "%.2f" % x) for n in proxies]
        row.append(spread(ratios(cpu[(wl[0], "ours")], cpu[(wl[0], "twemproxy")]), lambda x: "%.2f" % x))
        if uring:
            row.append(spread(ratios(cpu[(wl[0], "ours io_uring")], cpu[(wl[0], "twemproxy")]),
                              lambda x: "%.2f" % x))
            row.append(spread(ratios(cpu[(wl[0], "ours io_uring")], cpu[(wl[0], "ours")]),
                              lambda x: "%.2f" % x))
        rows.append(row)
    table("CPU per request, microseconds (user+system, /proc/PID/stat over the run; direct: the "
          "first server's own, the floor for answering these clients): median of %d [min-max]" % rounds,
          hdr, rows)


# ---- instructions per request (callgrind) ----------------------------------
def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def callgrind_run(b, name, binary, wl, n, extra=(), workers=0, clients=None):
    """Instructions of a fresh proxy under callgrind running wl (None: idle), summed
    over its processes (valgrind follows the fork: one output file per process, the
    master's and each of `workers` workers'), and the requests served."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", wl[0] if wl else "idle") + "_c%s" % (clients or CFG["C"])
    prefix = os.path.join(b.tmp, "callgrind.%s.%s" % (name, slug))
    t = b.start_proxy(name + "-cg", binary, extra=extra, workers=workers,
                      wrapper=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + prefix + ".%p"])
    wait_workers(t, workers, 120)
    reqs = b.load(wl, t, n=n, clients=clients)[0] if wl else 0
    b.procs.stop(t["proc"], timeout=120)
    # workers write their files as they exit, which may be after the master
    end = time.monotonic() + 60
    while True:
        files = [os.path.join(b.tmp, f) for f in os.listdir(b.tmp)
                 if f.startswith(os.path.basename(prefix) + ".")]
        try:
            if len(files) >= workers + 1:
                return reqs, sum(callgrind_total(f) for f in files)
        except RuntimeError:
            pass  # a file still being written
        if time.monotonic() > end:
            raise RuntimeError("callgrind wrote %d of %d files for %s" % (len(files), workers + 1, prefix))
        time.sleep(0.2)


def wait_workers(t, nw, timeout):
    end = time.monotonic() + timeout
    while len(children(t["proc"].pid)) < nw and time.monotonic() < end:
        time.sleep(0.05)


def section_instructions(b):
    if shutil.which("valgrind") is None:
        print("instructions: skipped (no valgrind: scripts/install-deps.sh bench)\n")
        return
    n = int(CFG["CG_N"])
    proxies = [("twemproxy", CFG["TWEM"], ()), ("ours", CFG["OURS"], ())]
    if CFG["URING"] == "1":
        proxies.append(("ours io_uring", CFG["OURS"], ("--event-backend=io_uring",)))
    per = {}
    for name, binary, extra in proxies:
        _, idle = callgrind_run(b, name.replace(" ", "-"), binary, None, 0, extra)
        for wl in WORKLOADS:
            reqs, ir = callgrind_run(b, name.replace(" ", "-"), binary, wl, n, extra)
            per[(wl[0], name)] = (ir - idle, reqs)
        log("instructions: %s done" % name)
    rows = []
    mixed = [wl[0] for wl in WORKLOADS if wl[1] == "redis"]
    labels = [wl[0] for wl in WORKLOADS] + ["mixed redis (the 5 rows above)"]
    for label in labels:
        keys = mixed if label.startswith("mixed") else [label]
        vals = []
        for name, _, _ in proxies:
            ir = sum(per[(k, name)][0] for k in keys)
            reqs = sum(per[(k, name)][1] for k in keys)
            vals.append(ir / reqs)
        rows.append([label] + ["%.0f" % v for v in vals] + ["%.2f" % (vals[1] / vals[0])])
    table("instructions per request of the proxy process (callgrind, %d requests per row, "
          "an idle run's start and stop subtracted)" % n,
          ["workload"] + [p[0] for p in proxies] + ["ours/twemproxy"], rows)


# ---- system calls per request (strace -c -f) -------------------------------
def strace_parse(path):
    calls = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and re.match(r"^[\d.]+$", parts[0]) and parts[3].isdigit():
                calls[parts[-1]] = int(parts[3])
    return calls


def traced(pid):
    with open("/proc/%d/status" % pid) as f:
        return re.search(r"^TracerPid:\s+(\d+)", f.read(), re.M).group(1) != "0"


def strace_run(b, t, wl, n):
    out = os.path.join(b.tmp, "strace.out")
    pid = t["proc"].pid
    st = b.procs.start(["strace", "-c", "-f", "-p", str(pid), "-o", out], "strace")
    end = time.monotonic() + 10
    while not traced(pid):
        if time.monotonic() > end or st.poll() is not None:
            raise RuntimeError("strace could not attach to %d" % pid)
        time.sleep(0.02)
    reqs = b.load(wl, t, n=n)[0]
    st.send_signal(signal.SIGINT)
    st.wait(30)
    b.procs.live.remove(st)
    calls = strace_parse(out)
    return {k: v / reqs for k, v in calls.items()}


def section_syscalls(b):
    if shutil.which("strace") is None:
        print("syscalls: skipped (no strace: scripts/install-deps.sh bench)\n")
        return
    n = int(CFG["ST_N"])
    proxies = [p for p in b.targets if p != "direct"]
    rows = []
    for wl in WORKLOADS:
        res = {p: strace_run(b, b.targets[p], wl, n) for p in proxies}
        tot = {p: res[p].get("total", 0.0) for p in proxies}
        ours = [p for p in proxies if p.startswith("ours")]
        tops = []
        for p in ours:
            top = sorted(((v, k) for k, v in res[p].items() if k != "total"), reverse=True)[:3]
            tops.append(" ".join("%s %.2f" % (k, v) for v, k in top))
        rows.append([wl[0]] + ["%.2f" % tot[p] for p in proxies] +
                    ["%.2f" % (tot[p] / tot["twemproxy"]) if tot["twemproxy"] else "n/a" for p in ours] +
                    tops)
    log("syscalls done")
    ratio_hdr = ["ours/twemproxy" if p == "ours" else p[5:] + "/twemproxy" for p in proxies
                 if p.startswith("ours")]
    table("system calls per request of the proxy process (strace -c -f, %d requests per row)" % n,
          ["workload"] + proxies + ratio_hdr + ["%s: the most frequent" % p for p in proxies
                                                if p.startswith("ours")], rows)


# ---- latency under load (bench/loadgen) ------------------------------------
LOADGEN = os.path.join(ROOT, "build", "loadgen")


def loadgen(t, mode, rate):
    port = t["mport"] if mode == "mc" else t["rport"]
    secs = float(CFG["LAT_SECONDS"])
    out = run_out([LOADGEN, "-p", str(port), "-c", CFG["C"], "-r", "%.0f" % rate, "-d", str(secs), "-w", "1",
                   "-k", CFG["R"], "-m", mode], secs + 30)
    kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
    if "p50_us" not in kv:
        raise RuntimeError("loadgen: " + out)
    return {k: float(v) for k, v in kv.items()}


def section_latency(b):
    if not os.access(LOADGEN, os.X_OK):
        print("latency: skipped (build/loadgen missing: make bench-tools)\n")
        return
    proxies = [p for p in b.targets if p != "direct"]
    targets = ["direct"] + proxies
    rounds = int(CFG["LAT_ROUNDS"])
    rows = []
    for mode, label in (("get", "redis GET"), ("mc", "memcached get/set 9:1")):
        sat = {p: loadgen(b.targets[p], mode, 0)["achieved"] for p in targets}
        base = min(sat[p] for p in proxies)
        rows.append([label + ", saturation"] + ["%s/s" % kfmt(sat[p]) for p in targets])
        for frac in (0.5, 0.9):
            runs = {p: [] for p in targets}
            for r in range(rounds):
                for p in targets[r % len(targets):] + targets[:r % len(targets)]:
                    runs[p].append(loadgen(b.targets[p], mode, frac * base))
            med = {p: {q: statistics.median(x[q] for x in runs[p]) for q in ("p50_us", "p99_us", "p999_us")}
                   for p in targets}
            d = med["direct"]
            cells = ["%.0f/%.0f/%.0f" % (d["p50_us"], d["p99_us"], d["p999_us"])]
            for p in proxies:
                cells.append("/".join("%+.0f" % (med[p][q] - d[q]) for q in ("p50_us", "p99_us", "p999_us")))
            rows.append(["%s, %d%% = %s/s" % (label, frac * 100, kfmt(frac * base))] + cells)
        log("latency: %s done" % label)
    table("latency in microseconds, p50/p99/p99.9, medians of %d runs: direct as measured, each proxy as "
          "added to direct (open loop, %s connections, %ss per run, the first second not counted; "
          "load = share of the slower proxy's saturation)" % (rounds, CFG["C"], CFG["LAT_SECONDS"]),
          ["load"] + targets, rows)


# ---- workers -----------------------------------------------------------------
def backend_conns(b):
    """Connections the first redis and the first memcached backend have open (ours excluded)."""
    s = socket.create_connection((HOST, b.rports[0]), timeout=5)
    s.sendall(b"INFO clients\r\n")
    data = b""
    while b"connected_clients:" not in data or not data.endswith(b"\r\n\r\n"):
        data += s.recv(65536)
    s.close()
    r = int(re.search(rb"connected_clients:(\d+)", data).group(1)) - 1
    s = socket.create_connection((HOST, b.mports[0]), timeout=5)
    s.sendall(b"stats\r\n")
    data = b""
    while not data.endswith(b"END\r\n"):
        data += s.recv(65536)
    s.close()
    m = int(re.search(rb"STAT curr_connections (\d+)", data).group(1)) - 1
    return r, m


def workers_cpu(pids, before):
    return sum(cpu_ticks(p) - before.get(p, 0) for p in pids)


def section_workers(b):
    wls = [WORKLOADS[0], WORKLOADS[2], WORKLOADS[5]]
    n = int(CFG["W_N"])
    single = {}
    t = b.targets["ours"]
    for wl in wls:
        c0 = cpu_ticks(t["proc"].pid)
        reqs = b.load(wl, t, n=n)[0]
        single[wl[0]] = (cpu_ticks(t["proc"].pid) - c0) * 1e6 / CLK_TCK / reqs
    rows = [["single process"] + ["%.2f" % single[wl[0]] for wl in wls] + ["", "", ""]]
    for nw in [int(x) for x in CFG["WORKERS_LIST"].split()]:
        r0, m0 = backend_conns(b)
        t = b.start_proxy("ours-w%d" % nw, CFG["OURS"], workers=nw)
        wait_workers(t, nw, 20)
        pids = children(t["proc"].pid)
        cells = []
        shares = []
        for wl in wls:
            before = {p: cpu_ticks(p) for p in pids}
            reqs = b.load(wl, t, n=n)[0]
            used = [cpu_ticks(p) - before[p] for p in pids]
            cells.append("%.2f (%.2f)" % (sum(used) * 1e6 / CLK_TCK / reqs,
                                         sum(used) * 1e6 / CLK_TCK / reqs / single[wl[0]]))
            shares.append(max(used) / sum(used) if sum(used) else 0)
        r1, m1 = backend_conns(b)
        b.procs.stop(t["proc"])
        rows.append(["%d worker%s" % (nw, "s" if nw > 1 else "")] + cells +
                    ["%.2f" % max(shares), str(r1 - r0), str(m1 - m0)])
        wait_conns = time.monotonic() + 10
        while backend_conns(b) != (r0, m0) and time.monotonic() < wait_conns:
            time.sleep(0.1)
        log("workers: %d done" % nw)
    table("worker mode: CPU per request in microseconds, all workers summed (ratio to one process); "
          "busiest worker's share of that CPU; connections to each backend server",
          ["ours"] + [wl[0] for wl in wls] + ["busiest share", "redis conns/server", "mc conns/server"], rows)
    if shutil.which("valgrind") is not None:
        workers_instructions(b, wls)


def workers_instructions(b, wls):
    """Instructions per request do not depend on timing or on the cores the processes
    share: with nothing shared on the request path they stay flat as workers are added,
    except for batching (fewer clients per worker, fewer requests per server write)."""
    n = int(CFG["CG_N"])
    counts = [0] + [int(x) for x in CFG["WORKERS_LIST"].split()]
    cases = [(wl, None) for wl in wls] + [(wls[0], "per worker")]
    per = {}
    for nw in counts:
        _, idle = callgrind_run(b, "ours-w%d" % nw, CFG["OURS"], None, 0, workers=nw)
        for wl, clients in cases:
            if clients and nw <= 1:  # C clients per worker is the row above
                per[(nw, wl[0], clients)] = per[(nw, wl[0], None)]
                continue
            reqs, ir = callgrind_run(b, "ours-w%d" % nw, CFG["OURS"], wl, n, workers=nw,
                                     clients=int(CFG["C"]) * nw if clients else None)
            per[(nw, wl[0], clients)] = (ir - idle) / reqs
        log("workers instructions: %d done" % nw)
    rows = []
    for wl, clients in cases:
        base = per[(0, wl[0], clients)]
        label = wl[0] + (", %s clients per worker" % CFG["C"] if clients else "")
        rows.append([label, "%.0f" % base] +
                    ["%.0f (%.2f)" % (per[(nw, wl[0], clients)], per[(nw, wl[0], clients)] / base)
                     for nw in counts[1:]])
    table("worker mode: instructions per request (callgrind, %d requests per row, the master and "
          "every worker summed, an idle run's start and stop subtracted; ratio to one process)" % n,
          ["workload", "one process"] + ["%d worker%s" % (nw, "s" if nw > 1 else "") for nw in counts[1:]],
          rows)


# ---- allocations per request -----------------------------------------------
MC_SITES, MC_DEPTH = 4096, 6


def alloc_snapshot(path):
    import struct
    with open(path, "rb") as f:
        data = f.read()
    head = struct.unpack_from("<8s6Q", data, 0)
    sites = {}
    off = 8 + 6 * 8
    for i in range(MC_SITES):
        rec = struct.unpack_from("<%dQ" % (1 + MC_DEPTH), data, off + i * 8 * (1 + MC_DEPTH))
        if rec[0]:
            sites[rec[1:]] = rec[0]
    return {"allocs": sum(head[1:5]), "frees": head[5], "dropped": head[6], "sites": sites}


def symbolizer(pid):
    maps = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "x" in parts[1]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append((lo, hi, int(parts[2], 16), parts[5]))
    cache = {}

    def name(pc):
        if pc == 0:
            return None
        if pc not in cache:
            cache[pc] = "0x%x" % pc
            for lo, hi, off, obj in maps:
                if lo <= pc < hi:
                    addr = pc - 1 - lo + off
                    out = run_out(["addr2line", "-f", "-p", "-C", "-e", obj, "0x%x" % addr], 10).strip()
                    fn, _, where = out.partition(" at ")
                    where = os.path.basename(where) if where and not where.startswith("??") else ""
                    cache[pc] = "%s%s" % (fn if fn != "??" else os.path.basename(obj),
                                          " (%s)" % where if where else "")
                    break
        return cache[pc]
    return name


def allocs_run(b, so, binary, extra, label):
    path = os.path.join(b.tmp, "malloc_count" + label.replace(" ", "-"))
    env = dict(os.environ, LD_PRELOAD=so, MALLOC_COUNT_FILE=path)
    t = b.start_proxy("ours-allocs" + label.replace(" ", "-"), binary, extra, env=env)
    n = int(CFG["ALLOC_N"])
    for wl in WORKLOADS:
        b.load(wl, t, n=n)  # warm-up: buffers, connections to every server, free lists
    rows = []
    per_wl = []
    for wl in WORKLOADS:
        s0 = alloc_snapshot(path)
        reqs = b.load(wl, t, n=n)[0]
        s1 = alloc_snapshot(path)
        sites = {k: v - s0["sites"].get(k, 0) for k, v in s1["sites"].items()}
        per_wl.append((wl[0], reqs, {k: v for k, v in sites.items() if v}))
        rows.append([wl[0], "%.3f" % ((s1["allocs"] - s0["allocs"]) / reqs),
                     "%.3f" % ((s1["frees"] - s0["frees"]) / reqs)])
    name = symbolizer(t["proc"].pid)
    b.procs.stop(t["proc"])
    table("allocator calls per request after warm-up (%s%s with bench/malloc_count.so, %d requests per row; "
          "each load opens %s new client connections)" % (binary, label, n, CFG["C"]),
          ["workload", "malloc+calloc+realloc", "free"], rows)
    print("where they come from, per request of each workload (the call site first, then its callers):")
    for wl_label, reqs, sites in per_wl:
        merged = {}
        for stack, count in sites.items():
            frames = tuple(f for f in (name(pc) for pc in stack) if f)[:4]
            merged[frames] = merged.get(frames, 0) + count
        print("  " + wl_label)
        for frames, count in sorted(merged.items(), key=lambda kv: -kv[1])[:16]:
            if count / reqs >= 0.001:
                print("    %7.3f  %s" % (count / reqs, " <- ".join(frames)))
    print()


def section_allocs(b):
    so = os.path.join(ROOT, "build", "malloc_count.so")
    if not os.path.exists(so):
        print("allocs: skipped (build/malloc_count.so missing: make malloc-count)\n")
        return
    binary = CFG["OURS_FP"] if os.access(CFG["OURS_FP"], os.X_OK) else CFG["OURS"]
    allocs_run(b, so, binary, [], "")
    if CFG["URING"] == "1":
        allocs_run(b, so, binary, ["--event-backend=io_uring"], " on io_uring")


def main(argv):
    wanted = argv[1:] or SECTIONS
    for s in wanted:
        if s not in SECTIONS:
            print("bench: unknown section %r (sections: %s)" % (s, " ".join(SECTIONS)), file=sys.stderr)
            return 2
    for tool in ["redis-server", "redis-benchmark", "memcached", "memcaslap"]:
        if shutil.which(tool) is None:
            print("bench: %s not found (scripts/install-deps.sh bench)" % tool, file=sys.stderr)
            return 1
    for b in (CFG["OURS"], CFG["TWEM"]):
        if not os.access(b, os.X_OK):
            print("bench: %s is not an executable (make; apt-get install nutcracker)" % b, file=sys.stderr)
            return 1
    tmp = tempfile.mkdtemp(prefix="nc-bench.")
    b = Bench(tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        b.start_backends()
        b.start_proxies()
        print("ours:      %s (%s)" % (run_out([CFG["OURS"], "-V"], 10).splitlines()[0], CFG["OURS"]))
        print("twemproxy: %s (%s)" % (run_out([CFG["TWEM"], "-V"], 10).splitlines()[0], CFG["TWEM"]))
        print("backends:  4 x redis-server, 4 x memcached (fnv1a_64, ketama pools in both proxies)")
        print("machine:   %d cores shared by the load generator, the proxies and the backends"
              % os.cpu_count())
        print("knobs:     " + " ".join("%s=%s" % kv for kv in CFG.items()))
        print()
        for t in ("direct", "twemproxy", "ours"):
            b.warm(b.targets[t])
        for s in wanted:
            {"throughput": section_throughput, "instructions": section_instructions,
             "syscalls": section_syscalls, "latency": section_latency, "workers": section_workers,
             "allocs": section_allocs}[s](b)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    finally:
        b.procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
