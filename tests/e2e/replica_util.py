"""Helpers shared by the replica and sentinel tests: what a redis server says
it executed (INFO commandstats) and replicated."""

from conftest import encode_command, wait_until
from liveness_util import forwarded


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
    wait_until(caught_up, "replicas caught up", timeout=10)


def replies_across_a_loss(px, pool, server, lose, *commands):
    """Each command on a connection of its own, written to server (stopped by
    the caller, so they wait there unanswered); then lose() (the server dies)
    and the replies, in the order of commands."""
    conns = [px.resp(timeout=30) for _ in commands]
    try:
        for c, cmd in zip(conns, commands):
            c.send(encode_command(*cmd))
        forwarded(px, pool, server, len(commands))
        lose()
        return [c.read_reply() for c in conns]
    finally:
        for c in conns:
            c.close()
