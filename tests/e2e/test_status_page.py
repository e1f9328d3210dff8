"""The status page in a real browser: Debian's headless Chromium, driven over
the DevTools protocol (python3-websocket). The page must load with no console
error or exception, show every pool and server of the configuration, mark a
server ejected within 2 s of its ejection, draw charts that move under load,
and fit a phone's width as well as a wall screen's. A screenshot of each is
left in the test's directory (and in $NC_SCREENSHOT_DIR when set)."""

import json
import os
import shutil
import signal
import threading
import time
import urllib.request

import pytest

from conftest import (HOST, TWEMPROXY, Resp, free_port, mc_pool, placement, redis_pool, spread_keys,
                      wait_until)

pytestmark = pytest.mark.skipif(TWEMPROXY, reason="twemproxy has no status page")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    """One headless Chromium and one page, spoken to over the DevTools protocol."""

    def __init__(self, env):
        import websocket
        self.profile = os.path.join(env.tmp, "chromium-profile")
        os.makedirs(self.profile)
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--disable-sync", "--disable-component-update", "--mute-audio",
                "--user-data-dir=" + self.profile, "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", "--window-size=1280,900", "about:blank"]
        self.proc, self.out = env.spawn(argv, "chromium")
        portfile = os.path.join(self.profile, "DevToolsActivePort")
        wait_until(lambda: os.path.exists(portfile) and open(portfile).read().count("\n") >= 1,
                   lambda: "the page server's port file; its output: " + open(self.out).read()[-2000:], timeout=30)
        port = int(open(portfile).read().split()[0])
        pages = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10))
        url = [p for p in pages if p["type"] == "page"][0]["webSocketDebuggerUrl"]
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.n = 0
        self.events = []
        for domain in ("Runtime", "Log", "Page"):
            self.call(domain + ".enable")

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                assert "error" not in msg, (method, msg)
                return msg.get("result", {})
            self.events.append(msg)

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def errors(self):
        """Console errors, exceptions and error log entries seen so far."""
        self.js("1")  # collect what arrived meanwhile
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(p)
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"])
        return out

    def screenshot(self, path):
        import base64
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        target = os.environ.get("NC_SCREENSHOT_DIR")
        if target:
            os.makedirs(target, exist_ok=True)
            shutil.copy(path, target)

    def viewport(self, width, height, mobile):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        self.ws.close()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.send_signal(signal.SIGKILL)


def page_state(b):
    # while the page loads (about:blank before it) there is nothing to read yet
    return b.js("""(() => { try { return {
        pools: [...document.querySelectorAll('[data-pool]')].map(e => e.dataset.pool),
        servers: Object.fromEntries([...document.querySelectorAll('[data-pool]')].map(e =>
            [e.dataset.pool, [...e.querySelectorAll('tr[data-server]')].map(r =>
                [r.dataset.server, r.dataset.state])])),
        samples: (window.ncStatus || {samples: 0}).samples,
        charts: Object.fromEntries([...document.querySelectorAll('[data-pool]')].map(e =>
            [e.dataset.pool, Object.fromEntries([...e.querySelectorAll('canvas[data-chart]')].map(c =>
                [c.dataset.chart, {points: +c.dataset.points || 0, max: +c.dataset.max || 0}]))])),
        overflow: document.documentElement.scrollWidth - window.innerWidth,
    }; } catch (e) { return {samples: 0}; } })()""")


def test_status_page_in_chromium(env):
    reds = env.redises(2)
    mcs = env.memcacheds(2)
    mport = free_port()
    px = env.proxy({"alpha": redis_pool(reds, auto_eject_hosts=True, server_failure_limit=1,
                                        server_retry_timeout=60000),
                    "beta": mc_pool(mcs)},
                   extra_args=["--metrics-port=%d" % mport, "--metrics-addr=%s" % HOST])
    b = Browser(env)
    stop = threading.Event()
    sent = [0]

    def load():
        c = Resp(port=px.port("alpha"))
        m = px.mc("beta")
        while not stop.is_set():
            c.call("SET", "page:%d" % (sent[0] % 50), "v")
            m.cmd(b"set page 0 0 1", b"v")
            sent[0] += 1

    t = threading.Thread(target=load)
    try:
        b.call("Page.navigate", url="http://%s:%d/" % (HOST, mport))
        wait_until(lambda: (page_state(b) or {}).get("samples", 0) >= 2, "two samples on the page", timeout=10)
        st = page_state(b)
        # every pool and server of the configuration, all live
        assert sorted(st["pools"]) == ["alpha", "beta"]
        assert sorted(n for n, _ in st["servers"]["alpha"]) == sorted(s.addr for s in reds)
        assert sorted(n for n, _ in st["servers"]["beta"]) == sorted("127.0.0.1:%d" % s.port for s in mcs)
        assert {s for _, s in st["servers"]["alpha"] + st["servers"]["beta"]} == {"live"}

        # under load the charts of both pools move
        t.start()
        wait_until(lambda: sent[0] > 200, "200 requests sent", timeout=10)
        before = page_state(b)["charts"]
        wait_until(lambda: all(page_state(b)["charts"][p]["rps"]["points"] >=
                               before[p]["rps"]["points"] + 3 for p in ("alpha", "beta")),
                   "3 more points on both pools' request charts", timeout=10)
        charts = page_state(b)["charts"]
        for p in ("alpha", "beta"):
            assert charts[p]["rps"]["max"] > 10, charts  # requests per second, drawn
            assert charts[p]["latency"]["points"] > 0 and charts[p]["latency"]["max"] > 0, charts
            assert charts[p]["clients"]["max"] >= 1, charts
        b.screenshot(os.path.join(env.tmp, "status-page-wall.png"))

        # a server goes down: the page says ejected within 2 s of the ejection
        # (the load stops first, so that the ejection is the GET's below)
        stop.set()
        t.join(10)
        victim = reds[1]
        key = next(k for k in spread_keys("eject", 1000) if placement([k], reds)[k] is victim)
        victim.stop()
        assert Resp(port=px.port("alpha")).call("GET", key).msg.startswith("ERR"), "no failure seen"
        ejected_at = time.monotonic()
        wait_until(lambda: dict(page_state(b)["servers"]["alpha"])[victim.addr] == "ejected",
                   "the page to show the server ejected", timeout=2.0, interval=0.05)
        took = time.monotonic() - ejected_at
        row = b.js("document.querySelector('tr[data-server=\"%s\"]').innerText" % victim.addr)
        assert "ejected" in row and "until" in row and "Connection refused" in row, row
        assert dict(page_state(b)["servers"]["alpha"])[reds[0].addr] == "live"
        print("\nstatus page: ejection shown after %.2f s" % took)

        # a phone's width: nothing wider than the screen
        b.viewport(390, 844, True)
        wait_until(lambda: page_state(b)["samples"] >= st["samples"] + 1, "one more sample on the page")
        assert page_state(b)["overflow"] <= 0, page_state(b)["overflow"]
        b.screenshot(os.path.join(env.tmp, "status-page-phone.png"))

        assert b.errors() == []
    finally:
        stop.set()
        if t.is_alive():
            t.join(10)
        b.close()


def test_status_page_in_worker_mode(env):
    """The master serves the page, summed over the workers, with the workers listed."""
    r = env.redis()
    mport = free_port()
    px = env.proxy({"alpha": redis_pool([r])}, global_={"worker_processes": 2},
                   extra_args=["--metrics-port=%d" % mport, "--metrics-addr=%s" % HOST])
    c = Resp(port=px.port("alpha"))
    for i in range(30):
        assert c.call("SET", "w%d" % i, "v") == b"OK"
    b = Browser(env)
    try:
        b.call("Page.navigate", url="http://%s:%d/" % (HOST, mport))
        wait_until(lambda: b.js("document.querySelectorAll('tr[data-worker]').length") == 2,
                   "a row for each of the 2 workers", timeout=10)
        pids = b.js("[...document.querySelectorAll('tr[data-worker] td:nth-child(2)')].map(e => +e.innerText)")
        children = [int(p) for p in open("/proc/%d/task/%d/children" % (px.proc.pid, px.proc.pid)).read().split()]
        assert sorted(pids) == sorted(children)
        wait_until(lambda: page_state(b)["servers"]["alpha"] == [[r.addr, "live"]], "the server shown live again")
        assert b.errors() == []
    finally:
        b.close()
