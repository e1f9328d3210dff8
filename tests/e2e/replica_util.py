"""Helpers shared by the replica and sentinel tests: polling, and what a redis
server says it executed (INFO commandstats) and replicated."""

import time


def wait_for(pred, timeout=10.0, step=0.05, what="condition"):
    """Poll pred() until it returns something true (returned) or raise after timeout.
    An exception in pred (a server restarting, a proxy not ready yet) counts as false."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:
            last = e
        time.sleep(step)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def calls(server, cmd):
    """How many times server executed cmd since its last CONFIG RESETSTAT."""
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_%s" % cmd, {}).get("calls", 0))


def reset_stats(*servers):
    for s in servers:
        s.client().config_resetstat()


def wait_replicated(master, replicas):
    """Every replica has caught up with the master's writes."""
    def caught_up():
        off = master.client().info("replication")["master_repl_offset"]
        return all(r.client().info("replication").get("slave_repl_offset", -1) >= off for r in replicas)
    wait_for(caught_up, what="replicas caught up")
