"""The lab grown to a two-node cluster (additive: the base lab is untouched).

    node  (the base lab's node: NodeLocal 169.254.25.10, pods 'pod' 10.244.1.10 and 'pod1b')
      |  vn2 10.0.12.1/30 -- eth0 10.0.12.2/30
    node2 (Node "node2": its own node-cache on 169.254.25.10 with its NOTRACK rules, its own
           kube-proxy and kubelet stand-in; pods 'pod2a' and 'pod2b')

node2's cache forwards to the kube-dns Service like node's (node2's kube-proxy DNATs it to the
CoreDNS pod on node), so both nodes answer alike until ``stale_cache(name, address)`` makes
node2's cache serve an old address for one name: the "one node's NodeLocal DNSCache serves a
stale answer" incident of issue 14 (a hosts block in node2's Corefile, reloaded: the cache
answers without asking upstream).

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

from . import (CLUSTER_EXTRA, NODELOCAL, Lab, LabError, _alive, _reap, _run, components, configs,
               kubeobjects)
from tests.kube.rest import ApiError

EXTRA = CLUSTER_EXTRA
# pod -> (node namespace, pod address, node-side address)
PODS = {
    "pod": ("node", "10.244.1.10", "10.244.1.1"),        # the base lab's pod
    "pod1b": ("node", "10.244.3.10", "10.244.3.1"),
    "pod2a": ("node2", "10.244.2.10", "10.244.2.1"),
    "pod2b": ("node2", "10.244.4.10", "10.244.4.1"),
}
NODE_LINK = ("10.0.12.1", "10.0.12.2")
NODE2_IP = NODE_LINK[1]
DAEMONS = ("nodelocal", "kubelet-node2", "kube-proxy-node2")


class ClusterLab:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.rundir = lab.rundir / "node2"

    def ns(self, short: str) -> str:
        return self.lab.ns(short)

    def exec(self, short: str, *cmd, check=False, timeout=30, **kw):
        return _run(["ip", "netns", "exec", self.ns(short), *map(str, cmd)], check=check,
                    timeout=timeout, **kw)

    def _pidfile(self, name: str) -> Path:
        return self.rundir / ("%s.pid" % name)

    def _pid(self, name: str = "nodelocal"):
        return self.lab._pid(name, self._pidfile(name))

    def is_up(self) -> bool:
        have = self.lab._existing_ns()
        return all(self.ns(n) in have for n in EXTRA) and all(self._pid(d) for d in DAEMONS)

    # ------------------------------------------------------------ build
    def up(self) -> "ClusterLab":
        self.lab.up()
        if self.is_up():
            return self
        self.down()
        try:
            self._build()
            self.wait_ready()
            self._wait_objects()
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
        self.exec("node2", "ip", "addr", "add", NODELOCAL + "/32", "dev", "lo", check=True)
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
        # the objects: node2's DaemonSet pods and the client pods, bound to their nodes
        with self.lab.api() as c:
            for obj in (kubeobjects.nodelocal_pod("node2"), kubeobjects.kube_proxy_pod("node2"),
                        kubeobjects.client_pod("pod1b", "node"),
                        kubeobjects.client_pod("pod2a", "node2"),
                        kubeobjects.client_pod("pod2b", "node2")):
                c.apply(obj)
        self.lab._kubelet_mapping("node", {"wxwork/pod1b": {"ips": [PODS["pod1b"][1]],
                                                            "netns": self.ns("pod1b")}})
        self.lab._kubelet_mapping("node2", {
            "wxwork/pod2a": {"ips": [PODS["pod2a"][1]], "netns": self.ns("pod2a")},
            "wxwork/pod2b": {"ips": [PODS["pod2b"][1]], "netns": self.ns("pod2b")},
            "kube-system/nodelocaldns-node2": {"netns": self.ns("node2"),
                                               "pidfile": str(self._pidfile("nodelocal"))},
            "kube-system/kube-proxy-node2": {"netns": self.ns("node2"),
                                             "pidfile": str(self._pidfile("kube-proxy-node2"))},
        }, addresses=[NODE2_IP])
        self.lab._start_kubelet("node2", [NODE2_IP], rundir=self.rundir)
        self.lab._start_kube_proxy("node2", NODE2_IP, rundir=self.rundir)
        self._start_cache()

    def _config(self, stale: dict[str, str]) -> Path:
        path = self.rundir / "nodelocal.Corefile"
        path.write_text(configs.nodelocal_run_corefile([NODELOCAL], stale=stale))
        return path

    def _start_cache(self, stale: dict[str, str] | None = None) -> None:
        conf = self._config(stale or {})
        self.lab._spawn("nodelocal-node2", "node2", [components.path("node-cache"), "-conf", conf],
                        cwd=self.rundir, pidfile=self._pidfile("nodelocal"))
        self.lab._notrack("node2", NODELOCAL, add=True)

    def _stop_cache(self) -> None:
        if self._pid("nodelocal") is None:
            return
        self.lab._kill("nodelocal", pidfile=self._pidfile("nodelocal"))
        if self.ns("node2") in self.lab._existing_ns():
            self.lab._notrack("node2", NODELOCAL, add=False)

    def _reload_cache(self, stale: dict[str, str] | None = None) -> None:
        """A changed Corefile: node-cache restarts with it (a SIGUSR1 could race CoreDNS's
        reload plugin, see Lab.reload), with a fresh cache."""
        self._stop_cache()
        self._start_cache(stale)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            p = self.exec("pod2a", "dig", "+time=1", "+tries=1", "@169.254.25.10",
                          "www.example.org", timeout=5)
            if p.returncode == 0 and "status: NOERROR" in p.stdout:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise LabError("node2's cache does not answer from pod2a (see %s)" % self.rundir)

    def _wait_objects(self, timeout: float = 60.0) -> None:
        """Until node2 is a Ready Node and the kubelet stand-ins report the new pods Running."""
        def running(p):
            st = p.get("status") or {}
            return st.get("phase") == "Running" and st.get("podIP")
        with self.lab.api() as c:
            try:
                c.wait_for("/api/v1/nodes/node2", lambda n: any(
                    x["type"] == "Ready" and x["status"] == "True"
                    for x in (n.get("status") or {}).get("conditions") or []), timeout=timeout)
                for name in ("pod1b", "pod2a", "pod2b"):
                    c.wait_for("/api/v1/namespaces/wxwork/pods/%s" % name, running, timeout=timeout)
            except TimeoutError as e:
                raise LabError("node2: %s (see %s)" % (e, self.rundir)) from None

    # ------------------------------------------------------------ faults
    def stale_cache(self, name: str, address: str) -> None:
        """node2's NodeLocal cache serves ``address`` for ``name`` (an A record upstream no
        longer has)."""
        self._reload_cache({name.rstrip("."): address})
        self.wait_ready()

    def clear(self) -> None:
        self._reload_cache()
        self.wait_ready()

    # ------------------------------------------------------------ teardown
    def down(self) -> None:
        for d in DAEMONS:
            if d == "nodelocal":
                continue
            self.lab._kill(d, pidfile=self._pidfile(d), term_wait=1.0)
        self._stop_cache()
        have = self.lab._existing_ns()
        if self.lab.is_up():
            # the node is gone: its objects go too (force: no kubelet confirms deletion)
            try:
                with self.lab.api() as c:
                    for ns, name in (("wxwork", "pod1b"), ("wxwork", "pod2a"), ("wxwork", "pod2b"),
                                     ("kube-system", "nodelocaldns-node2"),
                                     ("kube-system", "kube-proxy-node2")):
                        c.delete("/api/v1/namespaces/%s/pods/%s" % (ns, name), gracePeriodSeconds="0")
                    c.delete("/api/v1/nodes/node2")
                    c.delete("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node2")
            except (ApiError, ConnectionError, OSError):
                pass
        if self.lab.rundir.is_dir():
            self.lab._kubelet_mapping("node", {}, remove=("wxwork/pod1b",))
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
            for _ in range(40):
                if not any(_alive(p) for p in pids):
                    break
                time.sleep(0.05)
            _reap()
            _run(["ip", "netns", "del", full], check=False, timeout=15)
            shutil.rmtree(Path("/etc/netns") / full, ignore_errors=True)
        if self.lab.ns("node") in have:
            self.exec("node", "ip", "link", "del", "vn2", check=False)
            for pod, (node, addr, _gw) in PODS.items():
                if node == "node2":
                    self.exec("node", "ip", "route", "del", addr.rsplit(".", 1)[0] + ".0/24",
                              check=False)
        try:
            (self.lab.rundir / "kubelet-node2.json").unlink()
        except OSError:
            pass
        shutil.rmtree(self.rundir, ignore_errors=True)
