"""netns.py: one network namespace per node, joined by veth pairs to a bridge in the root
namespace, and the iptables rules that the nemeses put inside those namespaces.

Addresses live in SUBNET, a private /24 that exists only on the bridge and inside the
namespaces: node i is 10.77.0.(10 + i); the bridge (the host side: clients, workers and the
delay proxy) is 10.77.0.1, and 10.77.0.2 is where the proxy's connections to the nodes leave. Each namespace has two chains of its own, so that healing is a flush:
  - filter WJ-FAULT, jumped to from INPUT and OUTPUT: partitions and packet loss;
  - nat WJ-PROXY, jumped to from OUTPUT: node-to-node connections redirected to proxy.py.
Everything inside a namespace disappears with it; the root namespace gets only the bridge and
one FORWARD rule (bridged traffic passes iptables when br_netfilter is loaded), tagged with the
comment COMMENT so that --clean can find it.
"""

import os
import re

from . import PREFIX, log, sh

SUBNET_PREFIX = "10.77.0."
SUBNET = SUBNET_PREFIX + "0/24"
HOST_IP = SUBNET_PREFIX + "1"
# The proxy's connections to the nodes leave from this second host address, so that a node can
# tell relayed peer traffic from the clients' (both come from the host).
PROXY_IP = SUBNET_PREFIX + "2"
BRIDGE = PREFIX + "-br0"
COMMENT = PREFIX + "-jepsen"
FAULT_CHAIN = "WJ-FAULT"
PROXY_CHAIN = "WJ-PROXY"


def node_ip(i):
    """Node i's address (i from 1)."""
    return SUBNET_PREFIX + str(10 + i)


def ns_name(i):
    return "%s-n%d" % (PREFIX, i)


def veth_host(i):
    return "%s-n%d-v" % (PREFIX, i)  # at most 15 bytes (IFNAMSIZ)


def veth_node(i):
    return "%s-n%d-p" % (PREFIX, i)


def ns_exec(i, argv):
    """argv run inside node i's namespace."""
    return ["ip", "netns", "exec", ns_name(i)] + list(argv)


def ipt(i, args, check=True):
    """iptables inside node i's namespace (-w: wait for the xtables lock)."""
    return sh(ns_exec(i, ["iptables", "-w"] + list(args)), check=check)


def subnet_in_use():
    """True when some interface other than ours already routes the subnet."""
    out = sh(["ip", "-4", "route", "show", SUBNET], check=False, quiet=True).stdout
    return any(line.strip() and BRIDGE not in line for line in out.splitlines())


def setup(n):
    """Creates the bridge and n namespaces with their veths, addresses and chains."""
    if subnet_in_use():
        raise RuntimeError("%s is already routed on this host; run jepsen/run --clean, or free "
                           "the subnet" % SUBNET)
    sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
    sh(["ip", "addr", "add", HOST_IP + "/24", "dev", BRIDGE])
    sh(["ip", "addr", "add", PROXY_IP + "/24", "dev", BRIDGE])
    sh(["ip", "link", "set", BRIDGE, "up"])
    sh(["iptables", "-w", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment",
        "--comment", COMMENT, "-j", "ACCEPT"])
    for i in range(1, n + 1):
        ns = ns_name(i)
        sh(["ip", "netns", "add", ns])
        sh(["ip", "link", "add", veth_host(i), "type", "veth", "peer", "name", veth_node(i),
            "netns", ns])
        sh(["ip", "link", "set", veth_host(i), "master", BRIDGE, "up"])
        sh(ns_exec(i, ["ip", "addr", "add", node_ip(i) + "/24", "dev", veth_node(i)]))
        sh(ns_exec(i, ["ip", "link", "set", veth_node(i), "up"]))
        sh(ns_exec(i, ["ip", "link", "set", "lo", "up"]))
        for table, chain, hooks in (("filter", FAULT_CHAIN, ("INPUT", "OUTPUT")),
                                    ("nat", PROXY_CHAIN, ("OUTPUT",))):
            ipt(i, ["-t", table, "-N", chain])
            for hook in hooks:
                ipt(i, ["-t", table, "-I", hook, "-j", chain])
    log("network: bridge %s %s, %d namespaces %s..%s" % (BRIDGE, SUBNET, n, ns_name(1),
                                                          ns_name(n)))


def heal(n):
    """Removes every fault rule from every namespace."""
    for i in range(1, n + 1):
        ipt(i, ["-t", "filter", "-F", FAULT_CHAIN], check=False)
        ipt(i, ["-t", "nat", "-F", PROXY_CHAIN], check=False)


def drop(i, peer_ips, direction="both", probability=None):
    """Node i drops packets from (in) and/or to (out) the given addresses; with probability
    (0..1) only that share of them (iptables' statistic match, as this kernel has no netem)."""
    stat = [] if probability is None else ["-m", "statistic", "--mode", "random",
                                           "--probability", "%.3f" % probability]
    for ip in peer_ips:
        if direction in ("both", "in"):
            ipt(i, ["-A", FAULT_CHAIN, "-s", ip] + stat + ["-j", "DROP"])
        if direction in ("both", "out"):
            ipt(i, ["-A", FAULT_CHAIN, "-d", ip] + stat + ["-j", "DROP"])


def drop_incoming_connections(i, peer_ip, ports):
    """One-way loss at the message level: node i drops every packet of the connections peer_ip
    opens to its ports, so it hears nothing the peer sends on them, while the connections node
    i opens to the peer (its own messages, and their TCP replies) still work. (Dropping all of
    the peer's packets would stop TCP both ways.)"""
    ipt(i, ["-A", FAULT_CHAIN, "-s", peer_ip, "-p", "tcp", "-m", "multiport", "--dports",
            ",".join(str(p) for p in ports), "-j", "DROP"])


def drop_proxied(i, probability, proxy_ports):
    """Node i drops that share of the packets reaching it through the proxy: on the
    connections the proxy opens to it (from PROXY_IP) and on its own connections to the proxy
    (from HOST_IP's proxy_ports, "lo:hi"). Client traffic, which also comes from the host, is
    left alone."""
    stat = ["-m", "statistic", "--mode", "random", "--probability", "%.3f" % probability]
    ipt(i, ["-A", FAULT_CHAIN, "-s", PROXY_IP] + stat + ["-j", "DROP"])
    ipt(i, ["-A", FAULT_CHAIN, "-s", HOST_IP, "-p", "tcp", "--sport", proxy_ports] + stat +
        ["-j", "DROP"])


def redirect(i, peer_ip, port, proxy_port):
    """Node i's new connections to peer_ip:port go to the proxy on the host instead; the ones
    already open are reset, so that they reconnect through the proxy. (conntrack keeps an open
    connection on the path it started on, so the reset is what moves it.)"""
    ipt(i, ["-t", "nat", "-A", PROXY_CHAIN, "-p", "tcp", "-d", peer_ip, "--dport", str(port),
            "-j", "DNAT", "--to-destination", "%s:%d" % (HOST_IP, proxy_port)])
    # After the nat OUTPUT hook a redirected packet's destination is the proxy, so only the
    # connections that bypass it still match here.
    ipt(i, ["-A", FAULT_CHAIN, "-p", "tcp", "-d", peer_ip, "--dport", str(port), "-j", "REJECT",
            "--reject-with", "tcp-reset"])


def clean():
    """Removes leftovers by name: namespaces and links starting with PREFIX-, and every root
    iptables rule carrying COMMENT. Returns what it removed."""
    removed = []
    out = sh(["ip", "netns", "list"], check=False, quiet=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX + "-"):
            sh(["ip", "netns", "del", name], check=False)
            removed.append("netns " + name)
    out = sh(["ip", "-o", "link", "show"], check=False, quiet=True).stdout
    for line in out.splitlines():
        m = re.match(r"\d+: ([^:@]+)[:@]", line)
        if m and m.group(1).startswith(PREFIX + "-"):
            sh(["ip", "link", "del", m.group(1)], check=False, quiet=True)
            removed.append("link " + m.group(1))
    rules = sh(["iptables", "-w", "-S"], check=False, quiet=True).stdout
    for line in rules.splitlines():
        if COMMENT in line and line.startswith("-A "):
            args = line.split()
            args[0] = "-D"
            sh(["iptables", "-w"] + [a.strip('"') for a in args], check=False)
            removed.append("iptables " + line)
    return removed


def shm_leftovers(pids):
    """libfaketime's shared memory files of processes that died without cleaning up."""
    for pid in pids:
        for name in ("faketime_shm_%d" % pid, "sem.faketime_sem_%d" % pid):
            path = os.path.join("/dev/shm", name)
            if os.path.exists(path):
                os.unlink(path)
