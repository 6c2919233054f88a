"""The lab grown to a two-node cluster (additive: the base lab is untouched).

    node  (the base lab's node: NodeLocal 169.254.25.10, pods 'pod' 10.244.1.10 and 'pod1b')
      |  vn2 10.0.12.1/30 -- eth0 10.0.12.2/30
    node2 (its own NodeLocal cache on 169.254.25.10, pods 'pod2a' and 'pod2b')

node2's cache forwards to the same CoreDNS stand-in as node's, so both nodes answer alike until
``stale_cache(name, address)`` makes node2's cache serve an old address for one name: the
"one node's NodeLocal DNSCache serves a stale answer" incident of issue 14.

    cl = ClusterLab(lab).up()
    cl.exec("pod2a", "dig", "www.example.org")
    cl.stale_cache("www.example.org", "192.168.50.77"); ...; cl.clear()
    cl.down()
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import Lab, LabError, _alive, _run, configs

EXTRA = ("node2", "pod1b", "pod2a", "pod2b")
# pod -> (node namespace, pod address, node-side address)
PODS = {
    "pod": ("node", "10.244.1.10", "10.244.1.1"),        # the base lab's pod
    "pod1b": ("node", "10.244.3.10", "10.244.3.1"),
    "pod2a": ("node2", "10.244.2.10", "10.244.2.1"),
    "pod2b": ("node2", "10.244.4.10", "10.244.4.1"),
}
NODE_LINK = ("10.0.12.1", "10.0.12.2")


class ClusterLab:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.rundir = lab.rundir / "node2"

    def ns(self, short: str) -> str:
        if short in EXTRA:
            return "%s-%s" % (self.lab.prefix, short)
        return self.lab.ns(short)

    def exec(self, short: str, *cmd, check=False, timeout=30, **kw):
        return _run(["ip", "netns", "exec", self.ns(short), *map(str, cmd)], check=check,
                    timeout=timeout, **kw)

    def is_up(self) -> bool:
        have = self.lab._existing_ns()
        return all(self.ns(n) in have for n in EXTRA) and self._pid() is not None

    # ------------------------------------------------------------ build
    def up(self) -> "ClusterLab":
        self.lab.up()
        if self.is_up():
            return self
        self.down()
        try:
            self._build()
            self.wait_ready()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        for n in EXTRA:
            _run(["ip", "netns", "add", self.ns(n)])
            self.exec(n, "ip", "link", "set", "lo", "up", check=True)
        self.exec("node2", "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
        self.exec("node2", "ip", "addr", "add", "169.254.25.10/32", "dev", "lo", check=True)
        # the node-to-node link; node2 reaches CoreDNS, the upstream and the app through node
        _run(["ip", "link", "add", "name", "vn2", "netns", self.ns("node"), "type", "veth",
              "peer", "name", "eth0", "netns", self.ns("node2")])
        self.exec("node", "ip", "addr", "add", NODE_LINK[0] + "/30", "dev", "vn2", check=True)
        self.exec("node", "ip", "link", "set", "vn2", "up", check=True)
        self.exec("node2", "ip", "addr", "add", NODE_LINK[1] + "/30", "dev", "eth0", check=True)
        self.exec("node2", "ip", "link", "set", "eth0", "up", check=True)
        self.exec("node2", "ip", "route", "add", "default", "via", NODE_LINK[0], check=True)
        for pod, (node, addr, gw) in PODS.items():
            if pod == "pod":
                continue
            hostif = "v" + pod
            _run(["ip", "link", "add", "name", "eth0", "netns", self.ns(pod), "type", "veth",
                  "peer", "name", hostif, "netns", self.ns(node)])
            self.exec(pod, "ip", "addr", "add", addr + "/24", "dev", "eth0", check=True)
            self.exec(pod, "ip", "link", "set", "eth0", "up", check=True)
            self.exec(pod, "ip", "route", "add", "default", "via", gw, check=True)
            self.exec(node, "ip", "addr", "add", gw + "/24", "dev", hostif, check=True)
            self.exec(node, "ip", "link", "set", hostif, "up", check=True)
            if node == "node2":
                net = addr.rsplit(".", 1)[0] + ".0/24"
                self.exec("node", "ip", "route", "add", net, "via", NODE_LINK[1], check=True)
            etc = Path("/etc/netns") / self.ns(pod)
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(configs.RESOLV_CONF)
            (etc / "hosts").write_text(configs.HOSTS)
        self._start_cache()

    def _config(self, stale: dict[str, str]) -> Path:
        extra = []
        for name, addr in sorted(stale.items()):
            # what a cache holding an old record does: answer it without asking upstream
            extra.append('    local-zone: "%s." static' % name)
            extra.append('    local-data: "%s. 300 IN A %s"' % (name, addr))
        text = configs.NODELOCAL_UNBOUND.format(rundir=str(self.rundir),
                                                extra_server="\n".join(extra), extra_forward="")
        path = self.rundir / "nodelocal.conf"
        path.write_text(text)
        return path

    def _pid(self):
        try:
            pid = int((self.rundir / "nodelocal.pid").read_text().split()[0])
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            return None
        return pid if str(self.rundir) + "/" in cmdline else None

    def _start_cache(self, stale: dict[str, str] | None = None) -> None:
        conf = self._config(stale or {})
        (self.rundir / "nodelocal.pid").unlink(missing_ok=True)
        self.exec("node2", "unbound", "-c", str(conf), check=True, timeout=20)
        for _ in range(50):
            if self._pid() is not None:
                return
            time.sleep(0.1)
        raise LabError("node2's NodeLocal cache did not start (see %s)" % self.rundir)

    def _stop_cache(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(100):
            p = self.exec("pod2a", "dig", "+time=1", "+tries=1", "@169.254.25.10",
                          "www.example.org", timeout=5)
            if p.returncode == 0 and "status: NOERROR" in p.stdout:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise LabError("node2's cache does not answer from pod2a")

    # ------------------------------------------------------------ faults
    def stale_cache(self, name: str, address: str) -> None:
        """node2's NodeLocal cache serves ``address`` for ``name`` (an A record upstream no
        longer has)."""
        self._stop_cache()
        self._start_cache({name.rstrip("."): address})
        self.wait_ready()

    def clear(self) -> None:
        self._stop_cache()
        self._start_cache()
        self.wait_ready()

    # ------------------------------------------------------------ teardown
    def down(self) -> None:
        self._stop_cache()
        have = self.lab._existing_ns()
        for n in EXTRA:
            full = self.ns(n)
            if full not in have:
                continue
            try:
                pids = [int(x) for x in _run(["ip", "netns", "pids", full], check=False,
                                             timeout=10).stdout.split()]
            except (subprocess.SubprocessError, ValueError):
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            _run(["ip", "netns", "del", full], check=False, timeout=15)
            shutil.rmtree(Path("/etc/netns") / full, ignore_errors=True)
        if self.lab.ns("node") in have:
            self.exec("node", "ip", "link", "del", "vn2", check=False)
            for pod, (node, addr, _gw) in PODS.items():
                if node == "node2":
                    self.exec("node", "ip", "route", "del", addr.rsplit(".", 1)[0] + ".0/24",
                              check=False)
        shutil.rmtree(self.rundir, ignore_errors=True)
