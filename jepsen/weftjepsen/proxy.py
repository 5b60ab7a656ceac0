"""proxy.py: the delaying TCP proxy of the slow nemesis (this kernel has no netem qdisc).

For each node i and each of its ports (client 7400, raft 7401) the proxy listens on the host
side of the bridge, HOST_IP:(PORT_BASE + 10 i + k), and relays to the node's real address,
holding every chunk of bytes delay_ms before passing it on (in order, per direction). Nodes do
not know about it: during a slow fault, iptables' nat table inside the namespaces redirects
new node-to-node connections to the proxy (netns.redirect), and resets the direct ones so that
they reconnect through it. When the fault ends the redirects go, the delay drops to 0 and the
proxy closes its connections, so the nodes reconnect directly.

Its connections to the nodes leave from netns.PROXY_IP, so that the slow nemesis can drop a
share of the relayed packets without touching the clients' (netns.drop_proxied).

The proxy runs as its own process (python3 -m weftjepsen.proxy, asyncio), controlled by lines
on its stdin: "delay MS", "reset", "quit". It prints "ready" once it listens.
"""

import asyncio
import os
import subprocess
import sys
import time

from . import log, netns

PORT_BASE = 27400
# Every listening port lies in [PORT_BASE, PORT_END] (nodes 1 to 9, two ports each).
PORT_END = PORT_BASE + 99
# Bytes read at once from one side.
CHUNK_BYTES = 65536


def listen_port(i, k):
    """The proxy's port for node i's client (k=0) or raft (k=1) port."""
    return PORT_BASE + 10 * i + k


class Proxy:
    """The driver's handle on the proxy process."""

    def __init__(self, store, cluster):
        from .nodes import CLIENT_PORT, RAFT_PORT
        self.cluster = cluster
        self.ports = (CLIENT_PORT, RAFT_PORT)
        routes = []
        for nd in cluster.nodes:
            for k, port in enumerate(self.ports):
                routes.append("%s:%d=%s:%d" % (netns.HOST_IP, listen_port(nd.i, k), nd.ip, port))
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.logf = open(os.path.join(store, "logs", "proxy.log"), "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "weftjepsen.proxy",
                                      netns.PROXY_IP] + routes,
                                     cwd=here, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.logf, text=True, start_new_session=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("the delay proxy did not start (see logs/proxy.log)")

    def send(self, cmd):
        if self.proc.poll() is None:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
            self.proc.stdout.readline()  # "ok": the command took effect

    def set_delay_ms(self, ms):
        self.send("delay %d" % ms)

    def reset(self):
        self.send("reset")

    def route_through(self, nd, peers):
        """Node nd's connections to its peers, and theirs to it, go through the proxy."""
        for p in peers:
            for k, port in enumerate(self.ports):
                netns.redirect(nd.i, p.ip, port, listen_port(p.i, k))
                netns.redirect(p.i, nd.ip, port, listen_port(nd.i, k))

    def drop_share(self, nd, probability):
        """Node nd loses that share of the packets the proxy relays to it."""
        netns.drop_proxied(nd.i, probability, "%d:%d" % (PORT_BASE, PORT_END))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


# ---- the proxy process ----

class Relay:
    def __init__(self, source_ip):
        self.source_ip = source_ip  # the proxy's connections to the nodes leave from here
        self.delay_s = 0.0
        self.conns = set()  # open writers, both sides

    async def pump(self, reader, writer):
        """Copies reader to writer, each chunk held delay_s (as set when it arrived)."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        task = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await queue.put((time.monotonic() + self.delay_s, data))
        except (ConnectionError, OSError):
            pass
        await queue.put((0, None))
        try:
            await task
        except (ConnectionError, OSError):
            pass
        writer.close()

    async def handle(self, target, creader, cwriter):
        host, port = target
        try:
            sreader, swriter = await asyncio.open_connection(host, port,
                                                             local_addr=(self.source_ip, 0))
        except OSError:
            cwriter.close()
            return
        self.conns.update((cwriter, swriter))
        await asyncio.gather(self.pump(creader, swriter), self.pump(sreader, cwriter),
                             return_exceptions=True)
        self.conns.discard(cwriter)
        self.conns.discard(swriter)

    def reset(self):
        for w in list(self.conns):
            w.transport.abort()
        self.conns.clear()


async def serve(source_ip, routes):
    relay = Relay(source_ip)
    for r in routes:
        listen, target = r.split("=")
        lh, lp = listen.rsplit(":", 1)
        th, tp = target.rsplit(":", 1)
        await asyncio.start_server(
            lambda rd, wr, t=(th, int(tp)): relay.handle(t, rd, wr), lh, int(lp))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "quit":
            break
        if line[0] == "delay":
            relay.delay_s = int(line[1]) / 1000.0
        elif line[0] == "reset":
            relay.reset()
        print("ok", flush=True)
    relay.reset()


if __name__ == "__main__":
    try:
        asyncio.run(serve(sys.argv[1], sys.argv[2:]))
    except KeyboardInterrupt:
        pass
    log("proxy: stopped")
