"""podtriage test lab: the seed incident of DESIGN.md on the real stack, in network namespaces.

Stdlib only. Everything lives in namespaces named ``<prefix>-<name>`` and in the run
directory ``/run/podtriage-lab/<prefix>/``; nothing outside the lab is touched.

    lab = Lab(prefix="pt")      # or env PT_LAB_PREFIX
    lab.up()                    # idempotent
    lab.exec("pod", "dig", "api.corp.example", "+short")
    lab.block_tcp53("nodelocal"); ...; lab.clear_faults()
    lab.kubectl("get", "pods", "-A")        # the real API server (admin kubeconfig)
    lab.down()

    Lab(prefix="pt6", ipv6=True)   # or env PT_LAB_IPV6=1: the same lab, dual-stack (see
                                # "IPv6" below: ULA beside every IPv4 address, an IPv6
                                # NodeLocal, IPv6 listeners, an IPv6-only host)

Topology (IPv4; the node namespace is the router between all the others)::

    cp        10.0.10.10    etcd, kube-apiserver :6443, kube-controller-manager (controlplane.py)
    node      192.168.50.1 (br0, the node subnet; its InternalIP), 169.254.25.10 on lo:
              node-cache (NodeLocal DNSCache) with its NOTRACK rules, kube-proxy (iptables),
              the kubelet stand-in (tests/kube/kubelet.py: Node "node", pod status)
    coredns   10.244.0.3    pod kube-system/coredns: the real CoreDNS behind the kube-dns
                            Service 10.233.0.3 (kube-proxy's DNAT in node)
    pod       10.244.1.10   pod wxwork/pod: resolv.conf -> 169.254.25.10, ndots:5
    app       192.168.50.20 pod wxwork/backend (headless Service backend), HTTP on :80
    legacy    192.168.50.53 the retired DNS server (unbound): the stale 192.168.50.77
    upstream  192.168.60.53 the correct upstream (bind9)

cluster.py adds node2 (its own node-cache, kube-proxy and kubelet stand-in) and pods pod1b,
pod2a, pod2b.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import components, configs, kubeobjects, wildcard
from .controlplane import CP_ADDR, CP_GW, ControlPlane

__all__ = ["Lab", "LabError", "SERVERS", "NAMESPACES", "RUN_ROOT"]

ROOT = Path(__file__).resolve().parents[2]
RUN_ROOT = Path("/run/podtriage-lab")
NAMESPACES = ("pod", "node", "coredns", "legacy", "upstream", "app", "cp")
CLUSTER_EXTRA = ("node2", "pod1b", "pod2a", "pod2b")    # tests/lab/cluster.py's namespaces
TABLE = "ptlab"          # nft table (family ip) owned by the lab, one per lab namespace

NODELOCAL = "169.254.25.10"
KUBE_DNS = "10.233.0.3"              # the kube-dns Service (ClusterIP): kube-proxy DNATs it
COREDNS_POD = "10.244.0.3"           # ... to the CoreDNS pod
NODE_IP = "192.168.50.1"             # the node's InternalIP (its address on the node subnet)

# server -> (namespace, address, probe name for wait_ready, namespace to probe from)
SERVERS = {
    "upstream": ("upstream", "192.168.60.53", "ns1.corp.example", "node"),
    "legacy": ("legacy", "192.168.50.53", "ns1.corp.example", "node"),
    "coredns": ("coredns", KUBE_DNS, "kubernetes.default.svc.alpha.pm.k8s", "node"),
    "nodelocal": ("node", NODELOCAL, "kubernetes.default.svc.alpha.pm.k8s", "pod"),
    "app": ("app", "192.168.50.20", None, "node"),
}
# where a server's packets arrive when that differs from the address clients use
LISTEN = {"coredns": COREDNS_POD}
DNS_SERVERS = ("upstream", "legacy", "coredns", "nodelocal")
RCODES = ("NXDOMAIN", "REFUSED", "SERVFAIL")
# the Kubernetes processes of the base lab: name -> namespace
KUBE_DAEMONS = {"etcd": "cp", "kube-apiserver": "cp", "kube-controller-manager": "cp",
                "kubelet-node": "node", "kube-proxy-node": "node"}

# veth links: (ns_a, if_a, addr_a, ns_b, if_b, addr_b or None (bridge port))
LINKS = [
    ("pod", "eth0", "10.244.1.10/24", "node", "vpod", "10.244.1.1/24"),
    ("coredns", "eth0", COREDNS_POD + "/24", "node", "vcd", "10.244.0.1/24"),
    ("upstream", "eth0", "192.168.60.53/24", "node", "vup", "192.168.60.1/24"),
    ("legacy", "eth0", "192.168.50.53/24", "node", "vleg", None),
    ("app", "eth0", "192.168.50.20/24", "node", "vapp", None),
]
CP_LINK = ("cp", "eth0", CP_ADDR + "/24", "node", "vcp", CP_GW + "/24")
# The seed's stale answer: the retired server (legacy) answers it for *.corp.example.
STALE_ADDRESS = "192.168.50.77"
GATEWAYS = {"pod": "10.244.1.1", "coredns": "10.244.0.1", "upstream": "192.168.60.1",
            "legacy": "192.168.50.1", "app": "192.168.50.1", "cp": CP_GW}

# ---- IPv6 (Lab(ipv6=True)): ULA (fd00::/8, RFC 4193) beside every IPv4 address.
NAMESPACES6 = ("host6",)   # the IPv6-only host (no IPv4 at all)
# (namespace, interface) -> address; br0 is the node subnet's bridge
ADDRS6 = {
    ("pod", "eth0"): "fd00:244:1::10/64", ("node", "vpod"): "fd00:244:1::1/64",
    ("coredns", "eth0"): "fd00:244::3/64", ("node", "vcd"): "fd00:244::1/64",
    ("upstream", "eth0"): "fd00:60::53/64", ("node", "vup"): "fd00:60::1/64",
    ("legacy", "eth0"): "fd00:50::53/64", ("app", "eth0"): "fd00:50::20/64",
    ("node", "br0"): "fd00:50::1/64",
}
GATEWAYS6 = {"pod": "fd00:244:1::1", "coredns": "fd00:244::1", "upstream": "fd00:60::1",
             "legacy": "fd00:50::1", "app": "fd00:50::1", "host6": "fd00:70::1"}
NODELOCAL6 = "fd00:25::10"          # the IPv6 NodeLocal DNSCache address (on the node's lo)
NODELOCAL6_LL = "fe80::25:10"       # ... and a link-local one on the pod's link (node side: vpod)
KUBE_DNS6 = "fd00:233::3"           # kube-dns' IPv6 ClusterIP (dual-stack Service)
COREDNS_POD6 = "fd00:244::3"
SERVERS6 = {"nodelocal": NODELOCAL6, "coredns": KUBE_DNS6, "upstream": "fd00:60::53",
            "legacy": "fd00:50::53"}
LISTEN6 = {"coredns": COREDNS_POD6}
APP6 = "fd00:50::20"                # the dual-stack app host's IPv6 address
HOST6 = "fd00:70::30"               # the IPv6-only host, on its own link fd00:70::/64
STALE6 = "fd00:50::77"              # nobody holds it: the node's ND fails (ICMPv6 1/3)
EMPTY6_SUBNET = "fd00:99::/64"      # an IPv6 subnet on the node where nobody lives at all
WEB6 = {"app6": ("app", APP6), "host6": ("host6", HOST6)}   # HTTP on port 80, IPv6 only
TABLE6 = "ptlab6"                   # nft table (family ip6) owned by the lab's faults
TABLE_LL6 = "ptlabll6"              # the link-local NodeLocal's DNAT (permanent, see _build_v6)

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,19}$")
_CHILDREN: list[subprocess.Popen] = []     # daemons this process spawned (reaped when they exit)


class LabError(RuntimeError):
    pass


def _run(cmd, check=True, timeout=30, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise LabError("command failed (rc=%s): %s\n%s%s" % (
            p.returncode, " ".join(map(str, cmd)), p.stdout or "", p.stderr or ""))
    return p


def coredns_key() -> str:
    """Which pinned CoreDNS the lab runs: coredns-1.12 (kubeadm 1.34's) unless
    PT_LAB_COREDNS names another (coredns-1.14)."""
    key = os.environ.get("PT_LAB_COREDNS") or "coredns-1.12"
    if key not in components.BY_KEY or not key.startswith("coredns-"):
        raise LabError("PT_LAB_COREDNS=%s: one of %s" % (key, ", ".join(
            k for k in components.BY_KEY if k.startswith("coredns-"))))
    return key


def proxy_mode() -> str:
    """kube-proxy's mode: iptables (the default, as kubeadm and kubespray deploy it) or, with
    PT_LAB_PROXY_MODE=nftables, nftables (it runs on this kernel)."""
    mode = os.environ.get("PT_LAB_PROXY_MODE") or "iptables"
    if mode not in ("iptables", "nftables"):
        raise LabError("PT_LAB_PROXY_MODE=%s: iptables or nftables" % mode)
    return mode


def notrack_rules(localip: str, port: str = "53", health_port: str = "9254") -> list[tuple[str, str, str]]:
    """node-cache's iptables rules for its address (k8s.io/dns cmd/node-cache/app/cache_app.go,
    initIptables): (table, chain, rule). It prepends each one; the lab does the same."""
    rules = []
    for proto in ("tcp", "udp"):
        rules.append(("raw", "PREROUTING", "-p %s -d %s --dport %s -j NOTRACK" % (proto, localip, port)))
    for proto in ("tcp", "udp"):
        rules.append(("filter", "INPUT", "-p %s -d %s --dport %s -j ACCEPT" % (proto, localip, port)))
    for proto in ("tcp", "udp"):
        rules.append(("raw", "OUTPUT", "-p %s -s %s --sport %s -j NOTRACK" % (proto, localip, port)))
    for proto in ("tcp", "udp"):
        rules.append(("filter", "OUTPUT", "-p %s -s %s --sport %s -j ACCEPT" % (proto, localip, port)))
    for proto in ("tcp", "udp"):
        rules.append(("raw", "OUTPUT", "-p %s -d %s --dport %s -j NOTRACK" % (proto, localip, port)))
    rules.append(("raw", "OUTPUT", "-p tcp -d %s --dport %s -j NOTRACK" % (localip, health_port)))
    rules.append(("raw", "OUTPUT", "-p tcp -s %s --sport %s -j NOTRACK" % (localip, health_port)))
    return rules


def iptables_script(rules, op: str) -> str:
    """An iptables-restore --noflush script that inserts (-I) or deletes (-D) rules."""
    out = []
    for table in ("raw", "filter"):
        mine = [r for r in rules if r[0] == table]
        if mine:
            out.append("*%s" % table)
            out += ["%s %s %s" % (op, chain, rule) for _t, chain, rule in mine]
            out.append("COMMIT")
    return "\n".join(out) + "\n"


class Lab:
    def __init__(self, prefix: str | None = None, run_root: Path | str = RUN_ROOT,
                 ipv6: bool | None = None):
        prefix = prefix or os.environ.get("PT_LAB_PREFIX") or "pt"
        if not _PREFIX_RE.match(prefix):
            raise LabError("bad lab prefix %r (lowercase letters/digits, starts with a letter, max 20)"
                           % prefix)
        self.prefix = prefix
        self.rundir = Path(run_root) / prefix
        self.ipv6 = (os.environ.get("PT_LAB_IPV6") == "1") if ipv6 is None else bool(ipv6)
        self.cp = ControlPlane(self)
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ names
    def ns(self, name: str) -> str:
        """Full namespace name for a short name ('pod' -> 'pt-pod'); full names pass through."""
        known = NAMESPACES + NAMESPACES6 + CLUSTER_EXTRA
        if name.startswith(self.prefix + "-") and name[len(self.prefix) + 1:] in known:
            return name
        if name not in known:
            raise LabError("unknown lab namespace %r (one of %s)" % (name, ", ".join(NAMESPACES)))
        return "%s-%s" % (self.prefix, name)

    def exec(self, ns: str, *cmd, check=False, timeout=30, **kw) -> subprocess.CompletedProcess:
        """Run cmd inside a lab namespace (ip netns exec). Returns CompletedProcess
        (text, captured output by default). Pass capture_output=False etc. to override."""
        return _run(["ip", "netns", "exec", self.ns(ns), *map(str, cmd)],
                    check=check, timeout=timeout, **kw)

    def _existing_ns(self) -> set[str]:
        p = _run(["ip", "netns", "list"], check=False)
        return {line.split()[0] for line in p.stdout.splitlines() if line.strip()}

    def _etc(self, short: str) -> Path:
        return Path("/etc/netns") / self.ns(short)

    # ------------------------------------------------------------------ Kubernetes
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (system:masters). Its server, https://10.0.10.10:6443, exists
        only inside the lab: use it from a lab namespace (``kubectl``) or ``api()``."""
        return self.cp.kubeconfig_path("admin")

    def api(self, user: str = "admin"):
        """A tests.kube.rest.Client of the lab's API server (requests run inside the node's
        network namespace). Close it (or use ``with``)."""
        return self.cp.client(user, netns="node")

    def kubectl(self, *args, check=False, timeout=60, ns: str = "node", **kw):
        """Run the real kubectl v1.34 (tests/kube/kubectl.py) inside a lab namespace with the
        admin kubeconfig; its discovery cache stays in the run dir."""
        from tests.kube.kubectl import ensure_kubectl

        env = dict(kw.pop("env", None) or os.environ)
        env["KUBECACHEDIR"] = str(self.rundir / "kube" / "cache")
        return self.exec(ns, ensure_kubectl(), "--kubeconfig", self.kubeconfig(), *args,
                         check=check, timeout=timeout, env=env, **kw)

    def running_versions(self) -> dict[str, str]:
        """What the running lab's programs say they are: each binary's own --version, and
        the API server's /version."""
        out = {}
        for name, key, flag in (("coredns", coredns_key(), "-version"),
                                ("node-cache (engine)", "node-cache", "-version"),
                                ("etcd", "etcd", "--version"),
                                ("kube-apiserver", "kube-apiserver", "--version"),
                                ("kube-controller-manager", "kube-controller-manager", "--version"),
                                ("kube-proxy", "kube-proxy", "--version")):
            p = _run([str(components.path(key)), flag], check=False, timeout=20)
            out[name] = (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr) else "?"
        try:
            with self.api() as c:
                v = c.get("/version")
            out["API server /version"] = "%s (%s)" % (v["gitVersion"], v["goVersion"])
        except Exception as e:  # noqa: BLE001 - a report line, not a failure
            out["API server /version"] = "unavailable: %s" % e
        out["kubelet"] = "stand-in (tests/kube/kubelet.py), reports %s" % "v1.34.4"
        return out

    # ------------------------------------------------------------------ state
    @property
    def _state_file(self) -> Path:
        return self.rundir / "faults.json"

    def _state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {"rcode": {}, "fw": [], "stopped": [], "app_down": False}

    def _save(self, st: dict) -> None:
        self._state_file.write_text(json.dumps(st, indent=1, sort_keys=True))

    # ------------------------------------------------------------------ lifecycle
    def is_up(self) -> bool:
        """All namespaces exist and every server and Kubernetes process is alive (not
        probing DNS)."""
        if not self.rundir.is_dir():
            return False
        have = self._existing_ns()
        if not all(self.ns(n) in have for n in NAMESPACES):
            return False
        if self.ipv6 != (self.rundir / "ipv6").exists():
            return False        # built for the other address family set: rebuild
        if self.ipv6 and not all(self.ns(n) in have for n in NAMESPACES6):
            return False
        for f, want in (("coredns-key", coredns_key()), ("proxy-mode", proxy_mode())):
            if (self.rundir / f).exists() and (self.rundir / f).read_text().strip() != want:
                return False    # built with another CoreDNS or kube-proxy mode: rebuild
        if not all(self._pid(d) is not None for d in KUBE_DAEMONS):
            return False
        stopped = set(self._state().get("stopped", []))
        return all(self._pid(s) is not None for s in SERVERS if s not in stopped)

    def up(self, wait: bool = True) -> "Lab":
        if self.is_up():
            try:
                if wait:
                    self.wait_ready()
                return self
            except LabError:
                pass
        self.down()
        try:
            t0 = time.monotonic()
            self._build()
            if wait:
                self.wait_ready(timeout=120)
            self.timings["lab"] = time.monotonic() - t0
            (self.rundir / "timings.json").write_text(json.dumps(self.timings, indent=1))
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        t0 = time.monotonic()
        self.rundir.mkdir(parents=True, exist_ok=True)
        for d in ("named", "www", "coredns", "nodelocal", "kube"):
            (self.rundir / d).mkdir(exist_ok=True)
        (self.rundir / "www" / "index.html").write_text("podtriage lab backend\n")
        (self.rundir / "coredns-key").write_text(coredns_key() + "\n")
        (self.rundir / "proxy-mode").write_text(proxy_mode() + "\n")
        self._save(self._state())
        for n in NAMESPACES + (NAMESPACES6 if self.ipv6 else ()):
            _run(["ip", "netns", "add", self.ns(n)])
            self.exec(n, "ip", "link", "set", "lo", "up", check=True)
            if self.ipv6:
                self._v6_sysctls(n)
        # The control plane first: the API server takes the longest to come up, and starts
        # while the rest of the lab is built.
        self._link(*CP_LINK)
        self.cp.make_pki()
        self.cp.start("etcd")
        self.cp.start("kube-apiserver")
        etc = self._etc("pod")
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(configs.RESOLV_CONF)
        (etc / "hosts").write_text(configs.HOSTS)
        self.exec("node", "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
        self.exec("node", "ip", "addr", "add", NODELOCAL + "/32", "dev", "lo", check=True)
        self.exec("node", "ip", "link", "add", "br0", "type", "bridge", check=True)
        self.exec("node", "ip", "addr", "add", NODE_IP + "/24", "dev", "br0", check=True)
        self.exec("node", "ip", "link", "set", "br0", "up", check=True)
        for link in LINKS:
            self._link(*link)
        # The Service range: only kube-proxy's DNAT gives it a destination; this route lets the
        # node's own sockets (node-cache's forward to 10.233.0.3) leave with the node's address.
        self.exec("node", "ip", "route", "add", "10.233.0.0/18", "dev", "vcd", "src", NODE_IP,
                  check=True)
        if self.ipv6:
            self._build_v6()
        for s in ("upstream", "legacy", "app"):
            self.start(s, wait=False)
        self.timings["network"] = time.monotonic() - t0
        self.timings["apiserver_ready"] = self.cp.wait_ready() + self.timings["network"]
        self._bootstrap()
        self.cp.start("kube-controller-manager")
        self._start_kubelet("node", [NODE_IP] + (["fd00:50::1"] if self.ipv6 else []))
        self._start_kube_proxy("node", NODE_IP)
        self.timings["control_plane"] = time.monotonic() - t0
        self.start("coredns", wait=False)
        self.start("nodelocal", wait=False)
        if self.ipv6:
            for w in WEB6:
                self._start_web6(w)
            self.web6_ready()

    def _link(self, a, ifa, addra, b, ifb, addrb) -> None:
        _run(["ip", "link", "add", "name", ifa, "netns", self.ns(a), "type", "veth",
              "peer", "name", ifb, "netns", self.ns(b)])
        self.exec(a, "ip", "addr", "add", addra, "dev", ifa, check=True)
        self.exec(a, "ip", "link", "set", ifa, "up", check=True)
        if addrb:
            self.exec(b, "ip", "addr", "add", addrb, "dev", ifb, check=True)
        else:
            self.exec(b, "ip", "link", "set", ifb, "master", "br0", check=True)
        self.exec(b, "ip", "link", "set", ifb, "up", check=True)
        self.exec(a, "ip", "route", "add", "default", "via", GATEWAYS[a], check=True)

    # ------------------------------------------------------------------ Kubernetes objects
    def _bootstrap(self) -> None:
        """What kubeadm and the addons would have created, and the lab's pods; then a
        service-account token for CoreDNS (TokenRequest bound to its pod)."""
        corefiles = {"coredns": configs.corefile_of(configs.COREFILES / "coredns-configmap.yaml"),
                     "nodelocal": configs.corefile_of(configs.COREFILES / "nodelocaldns-configmap.yaml")}
        with self.api() as c:
            for obj in kubeobjects.base(self.ipv6, coredns_key(), corefiles):
                c.apply(obj)
            pod = c.get("/api/v1/namespaces/kube-system/pods/coredns")
            tr = c.request("POST", "/api/v1/namespaces/kube-system/serviceaccounts/coredns/token", {
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 30 * 86400,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "coredns",
                                            "uid": pod["metadata"]["uid"]}}})
        # In a cluster CoreDNS reaches the API through the kubernetes Service (in-cluster
        # config: KUBERNETES_SERVICE_HOST): here too, through kube-proxy's DNAT on the node.
        self.cp.write_kubeconfig("coredns", token=tr["status"]["token"],
                                 server="https://10.233.0.1:443")
        self._kubelet_mapping("node", {
            "kube-system/coredns": {"ips": [COREDNS_POD] + ([COREDNS_POD6] if self.ipv6 else []),
                                    "netns": self.ns("coredns"),
                                    "pidfile": str(self._pidfile("coredns"))},
            "kube-system/nodelocaldns-node": {"netns": self.ns("node"),
                                              "pidfile": str(self._pidfile("nodelocal"))},
            "kube-system/kube-proxy-node": {"netns": self.ns("node"),
                                            "pidfile": str(self._pidfile("kube-proxy-node"))},
            "wxwork/backend": {"ips": ["192.168.50.20"] + ([APP6] if self.ipv6 else []),
                               "netns": self.ns("app"), "pidfile": str(self._pidfile("app"))},
            "wxwork/pod": {"ips": ["10.244.1.10"] + (["fd00:244:1::10"] if self.ipv6 else []),
                           "netns": self.ns("pod")},
        }, addresses=[NODE_IP] + (["fd00:50::1"] if self.ipv6 else []))

    def _kubelet_mapping(self, node: str, pods: dict, addresses: list[str] | None = None,
                         remove: tuple = ()) -> None:
        path = self.rundir / ("kubelet-%s.json" % node)
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError):
            m = {"addresses": [], "pods": {}}
        if addresses is not None:
            m["addresses"] = addresses
        m["pods"].update(pods)
        for k in remove:
            m["pods"].pop(k, None)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(m, indent=1, sort_keys=True))
        tmp.replace(path)

    def _start_kubelet(self, node: str, addresses: list[str], rundir: Path | None = None) -> None:
        rd = rundir or self.rundir
        if not (self.rundir / ("kubelet-%s.json" % node)).exists():
            self._kubelet_mapping(node, {}, addresses=addresses)
        cert, key = self.cp.kubelet_serving(node, addresses)
        self._spawn("kubelet-%s" % node, node, [
            sys.executable, "-m", "tests.kube.kubelet",
            "--kubeconfig", str(self.cp.kubeconfig_path("node-%s" % node)), "--node", node,
            "--mapping", str(self.rundir / ("kubelet-%s.json" % node)),
            "--tls-cert-file", str(cert), "--tls-private-key-file", str(key),
            "--client-ca-file", str(self.cp.pki / "ca.crt"),
            "--marker", str(self.rundir) + "/"], cwd=ROOT, pidfile=rd / ("kubelet-%s.pid" % node),
            host_mounts=True)

    def kube_proxy_config(self, node: str, node_ip: str, mode: str | None = None) -> dict:
        mode = mode or proxy_mode()
        return {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
                "clientConnection": {"kubeconfig": str(self.cp.kubeconfig_path("kube-proxy"))},
                "hostnameOverride": node, "bindAddress": node_ip, "mode": mode,
                "clusterCIDR": "10.244.0.0/16,fd00:244::/48", "detectLocalMode": "ClusterCIDR",
                "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
                # a network namespace cannot set the global nf_conntrack_max: leave the
                # kernel's conntrack settings alone
                "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                              "tcpCloseWaitTimeout": "0s"},
                "nodePortAddresses": ["primary"]}

    def _start_kube_proxy(self, node: str, node_ip: str, rundir: Path | None = None) -> None:
        rd = rundir or self.rundir
        conf = rd / ("kube-proxy-%s.json" % node)
        conf.write_text(json.dumps(self.kube_proxy_config(node, node_ip), indent=1))
        self._spawn("kube-proxy-%s" % node, node, [
            str(components.path("kube-proxy")), "--config=%s" % conf,
            "--hostname-override=%s" % node], pidfile=rd / ("kube-proxy-%s.pid" % node))

    def down(self) -> None:
        """Remove everything this lab created. Never raises for missing parts."""
        st = self._state() if self.rundir.is_dir() else {}
        have = self._existing_ns()
        mine = [n for n in ("%s-%s" % (self.prefix, s) for s in NAMESPACES + NAMESPACES6 + CLUSTER_EXTRA)
                if n in have]
        # every process still inside a lab namespace belongs to the lab (servers, CoreDNS,
        # node-cache, kube-proxy, the kubelet stand-ins, the control plane, tests' leftovers)
        pids = set()
        for full in mine:
            try:
                pids |= {int(x) for x in _run(["ip", "netns", "pids", full], check=False,
                                              timeout=10).stdout.split()}
            except Exception:
                pass
        for s in list(SERVERS) + list(KUBE_DAEMONS):
            pid = self._pid(s)
            if pid:
                pids.add(pid)
        for sig, wait in ((signal.SIGTERM, 1.5), (signal.SIGKILL, 3.0)):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(_alive(p) for p in pids):
                time.sleep(0.05)
            pids = {p for p in pids if _alive(p)}
            if not pids:
                break
        _reap()
        del st
        for full in mine:
            _run(["ip", "netns", "del", full], check=False, timeout=15)
        for n in NAMESPACES + NAMESPACES6 + CLUSTER_EXTRA:
            shutil.rmtree(Path("/etc/netns") / ("%s-%s" % (self.prefix, n)), ignore_errors=True)
        shutil.rmtree(self.rundir, ignore_errors=True)
        try:
            self.rundir.parent.rmdir()      # only if no other lab uses it
        except OSError:
            pass

    def wait_ready(self, timeout: float = 10.0, servers=None) -> None:
        """Query each (running) server until it answers; LabError after `timeout` s total."""
        stopped = set(self._state().get("stopped", []))
        todo = [s for s in (servers or SERVERS) if s not in stopped]
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        while True:
            todo = [s for s in todo if not self.answers(s)]
            if not todo:
                return
            if time.monotonic() >= deadline:
                break
            for s in todo:
                if s in SERVERS and self._pid(s) is None:
                    raise LabError("lab %s: %s is not running (see %s)" % (
                        self.prefix, s, self.rundir / ("%s.log" % s)))
            time.sleep(0.2)
        raise LabError("lab %s: servers not ready after %.0fs: %s (see %s)"
                       % (self.prefix, time.monotonic() - t0, todo, self.rundir))

    def answers(self, server: str) -> bool:
        """One quick probe: does the server answer (any DNS rcode counts; app: HTTP 200)?"""
        ns, addr, qname, src = SERVERS[server]
        try:
            if server == "app":
                p = self.exec(src, "curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}",
                              "http://%s/" % addr, timeout=5)
                return p.stdout.strip() == "200"
            p = self.exec(src, "dig", "+time=1", "+tries=1", "@" + addr, qname, timeout=5)
            if server in ("coredns", "nodelocal"):
                # the kubernetes plugin answers this name once it has synced with the API
                return p.returncode == 0 and "status: NOERROR" in p.stdout and "10.233.0.1" in p.stdout
            return p.returncode == 0 and "status:" in p.stdout
        except (subprocess.TimeoutExpired, LabError):
            return False

    def status(self) -> dict:
        have = self._existing_ns()
        return {
            "prefix": self.prefix,
            "rundir": str(self.rundir),
            "kubeconfig": str(self.kubeconfig()),
            "namespaces": {self.ns(n): self.ns(n) in have for n in NAMESPACES},
            "servers": {s: {"pid": self._pid(s),
                            "answers": self.ns(SERVERS[s][3]) in have and self.answers(s)}
                        for s in SERVERS},
            "kubernetes": {d: {"pid": self._pid(d)} for d in KUBE_DAEMONS},
            "faults": self._state() if self.rundir.is_dir() else None,
        }

    # ------------------------------------------------------------------ processes
    def _pidfile(self, server: str) -> Path:
        return self.rundir / ("%s.pid" % server)

    def _pid(self, server: str, pidfile: Path | None = None):
        """pid from the pidfile if that process is alive and is ours (cmdline names rundir)."""
        try:
            pid = int((pidfile or self._pidfile(server)).read_text().split()[0])
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            return None
        return pid if str(self.rundir) + "/" in cmdline and _alive(pid) else None

    def _spawn(self, name: str, ns: str, cmd: list[str], cwd=None, pidfile: Path | None = None,
               host_mounts: bool = False) -> int:
        """Start a (non-daemonizing) program inside a lab namespace; its log is NAME.log.
        host_mounts: enter the network namespace only (nsenter), keeping the host's mounts:
        `ip netns exec` gives the program a mount namespace with a fresh sysfs, where the
        cgroup hierarchies are gone and runc (podman, for the kubelet stand-in) cannot create
        a container ("no cgroup mount found in mountinfo")."""
        pidfile = pidfile or self._pidfile(name)
        log = open(pidfile.with_suffix(".log"), "ab")
        enter = (["nsenter", "--net=/run/netns/%s" % self.ns(ns), "--"] if host_mounts
                 else ["ip", "netns", "exec", self.ns(ns)])
        try:
            p = subprocess.Popen([*enter, *map(str, cmd)],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=cwd,
                                 start_new_session=True)
        finally:
            log.close()
        _CHILDREN.append(p)
        pidfile.write_text("%d\n" % p.pid)
        return p.pid

    def _kill(self, server: str, pidfile: Path | None = None, term_wait: float = 3.0) -> None:
        pid = self._pid(server, pidfile)
        if pid is not None:
            for sig, wait in ((signal.SIGTERM, term_wait), (signal.SIGKILL, 2.0)):
                try:
                    os.kill(pid, sig)
                except OSError:
                    break
                deadline = time.monotonic() + wait
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not _alive(pid):
                    break
        _reap()
        try:
            (pidfile or self._pidfile(server)).unlink()
        except OSError:
            pass
        if server == "nodelocal" and pidfile is None:
            # node-cache tears its iptables rules down when it exits (caddy.OnProcessExit)
            self._notrack("node", NODELOCAL, add=False)

    def _notrack(self, ns: str, localip: str, add: bool) -> None:
        rules = notrack_rules(localip)
        if add:
            self.exec(ns, "iptables-restore", "-w", "--noflush",
                      input=iptables_script(rules, "-I"), check=True)
            return
        p = self.exec(ns, "iptables-restore", "-w", "--noflush", input=iptables_script(rules, "-D"))
        if p.returncode != 0:      # some were gone already: delete one by one
            for table, chain, rule in rules:
                self.exec(ns, "iptables", "-w", "-t", table, "-D", chain, *rule.split())

    def _write_config(self, server: str) -> Path:
        path, text = self._render_config(server)
        path.write_text(text)
        return path

    def _render_config(self, server: str) -> tuple[Path, str]:
        rd = str(self.rundir)
        forced = self._state().get("rcode", {}).get(server, {})
        if server == "legacy":
            extra_server, extra_forward = [], []
            for name, rc in sorted(forced.items()):
                if rc == "SERVFAIL":
                    # transparent zone + TCP forward to a closed port (RST) -> SERVFAIL at once
                    extra_server.append('    local-zone: "%s." transparent' % name)
                    extra_forward.append('forward-zone:\n    name: "%s."\n'
                                         '    forward-addr: 127.0.0.1@9\n'
                                         '    forward-tcp-upstream: yes\n' % name)
                else:
                    kind = "always_nxdomain" if rc == "NXDOMAIN" else "always_refuse"
                    extra_server.append('    local-zone: "%s." %s' % (name, kind))
            kw = dict(rundir=rd, extra_server="\n".join(extra_server),
                      extra_forward="\n".join(extra_forward))
            data = ['    local-data: "%s 86400 IN %s %s"' % r for r in configs.LEGACY_RECORDS
                    if not _under(r[0], forced)]
            text = configs.LEGACY_UNBOUND.format(legacy_data="\n".join(data), **kw)
            path = self.rundir / "legacy.conf"
        elif server == "coredns":
            text = configs.coredns_run_corefile(str(self.cp.kubeconfig_path("coredns")), forced)
            path = self.rundir / "coredns" / "Corefile"
        elif server == "nodelocal":
            binds = [NODELOCAL] + ([NODELOCAL6] if self.ipv6 else [])
            text = configs.nodelocal_run_corefile(binds, forced)
            path = self.rundir / "nodelocal" / "Corefile"
        elif server == "upstream":
            zd = self.rundir / "named"
            zd.mkdir(exist_ok=True)
            recs = ["%s %s %s" % r for r in configs.CORP_RECORDS if not _under(r[0], forced)]
            (zd / "corp.example.zone").write_text(configs.CORP_ZONE_HEAD + "\n".join(recs) + "\n")
            (zd / "example.org.zone").write_text(configs.EXAMPLE_ORG_ZONE)
            (zd / "root.zone").write_text(configs.ROOT_ZONE)
            extra = []
            for name, rc in sorted(forced.items()):
                if rc == "REFUSED":
                    extra.append('zone "%s" { type primary; file "%s/corp.example.zone"; '
                                 'allow-query { none; }; };' % (name, zd))
                elif rc == "SERVFAIL":   # a configured zone that fails to load -> SERVFAIL
                    extra.append('zone "%s" { type primary; file "%s/missing.zone"; };'
                                 % (name, zd))
                # NXDOMAIN: the records are simply left out of the zone
            text = configs.UPSTREAM_NAMED.format(rundir=rd, extra="\n".join(extra))
            path = self.rundir / "upstream.conf"
        else:
            raise LabError("no config for %s" % server)
        text = wildcard.render(self, server, text)
        if self.ipv6:
            text = _v6_listen(server, text)
        return path, text

    def start(self, server: str, wait: bool = True) -> None:
        """Start a server (no-op if running) and, with wait, wait until it answers."""
        if server not in SERVERS:
            raise LabError("unknown server %r (one of %s)" % (server, ", ".join(SERVERS)))
        st = self._state()
        if server in st.get("stopped", []):
            st["stopped"].remove(server)
            self._save(st)
        if self._pid(server) is None:
            ns = SERVERS[server][0]
            if server == "app":
                self._spawn("app", ns, [sys.executable, "-m", "http.server", "80", "--bind",
                                        "192.168.50.20", "--directory", str(self.rundir / "www")])
            elif server == "coredns":
                conf = self._write_config(server)
                self._spawn("coredns", ns, [components.path(coredns_key()), "-conf", conf],
                            cwd=conf.parent)
            elif server == "nodelocal":
                conf = self._write_config(server)
                self._spawn("nodelocal", ns, [components.path("node-cache"), "-conf", conf],
                            cwd=conf.parent)
                # node-cache sets its rules up as soon as its CoreDNS runs (runPeriodic)
                self._notrack("node", NODELOCAL, add=True)
            else:
                conf = self._write_config(server)
                self._pidfile(server).unlink(missing_ok=True)
                if server == "legacy":
                    cmd = ["unbound", "-c", str(conf)]
                else:
                    cmd = ["named", "-c", str(conf)] if self.ipv6 else ["named", "-4", "-c", str(conf)]
                self.exec(ns, *cmd, check=True, timeout=20)
            for _ in range(50):
                if self._pid(server) is not None:
                    break
                time.sleep(0.1)
            else:
                raise LabError("%s did not start (see %s)" % (server, self.rundir))
        if wait:
            self.wait_ready(servers=[server], timeout=30 if server in ("coredns", "nodelocal") else 10)
            if server == "coredns":
                self._wait_coredns_pod()

    def _wait_coredns_pod(self, timeout: float = 30.0) -> None:
        """After CoreDNS (re)starts: until the kubelet stand-in reports the new container
        Ready, then until kube-proxy has applied what followed. A restarted container is not
        ready until its readiness probe passes: the kube-dns EndpointSlice drops the endpoint
        and takes it back, and kube-proxy (minSyncPeriod 1 s) applies each change, the first as
        a REJECT rule ("has no endpoints"). Two sync periods after Ready, the rules are final."""
        pid = self._pid("coredns")
        want = "lab://%s" % pid
        with self.api() as c:
            try:
                c.wait_for("/api/v1/namespaces/kube-system/pods/coredns", lambda p: any(
                    s.get("containerID") == want and s.get("ready")
                    for s in (p.get("status") or {}).get("containerStatuses") or []), timeout=timeout)
            except TimeoutError as e:
                raise LabError(str(e)) from None
        time.sleep(2.2)
        self.wait_ready(servers=["coredns"], timeout=timeout)

    def stop(self, server: str) -> None:
        """Stop a server (SIGTERM, as a kubelet stops a container). clear_faults() starts it
        again. CoreDNS takes its ``lameduck 5s`` (it answers meanwhile, health says 503)."""
        if server not in SERVERS:
            raise LabError("unknown server %r (one of %s)" % (server, ", ".join(SERVERS)))
        st = self._state()
        if server not in st["stopped"]:
            st["stopped"].append(server)
            self._save(st)
        self._kill(server, term_wait=8.0 if server == "coredns" else 3.0)

    def restart(self, server: str, wait: bool = True) -> None:
        self._kill(server)
        self.start(server, wait=wait)

    def reload(self, server: str) -> None:
        """CoreDNS and node-cache with an unchanged Corefile: reload it in place (SIGUSR1):
        fresh caches and forwarders (health state), same process. With a changed Corefile
        (forced rcodes): restart the process. CoreDNS's own ``reload`` plugin notices a changed
        Corefile within its interval and restarts the server itself; a SIGUSR1 at the same
        moment makes two restarts run at once, and the losing one fails ("Restart failed:
        getting old listener file: ... use of closed network connection") and leaves the
        listeners broken. The other servers restart."""
        if server not in ("coredns", "nodelocal"):
            self.restart(server)
            return
        pid = self._pid(server)
        path, text = self._render_config(server)
        try:
            same = path.read_text() == text
        except OSError:
            same = False
        # While a firewall fault is on, restart too: a SIGUSR1 reload with an upstream that
        # drops everything can take longer than any sane wait (the old instance's in-flight
        # forwards and the loop plugin's start-up probe wait for their dial timeouts), so
        # "Reloading complete" came after 20 s under load.
        if pid is None or not same or self._state()["fw"]:
            if pid is not None:
                self._kill(server, term_wait=0.0 if server == "coredns" else 3.0)
            self.start(server, wait=not self._state()["fw"])
            return
        log = self.rundir / ("%s.log" % server)
        before = log.read_text(errors="replace").count("Reloading complete")
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        reloaded = False
        while time.monotonic() < deadline and not reloaded:
            text = log.read_text(errors="replace")
            reloaded = text.count("Reloading complete") > before
            if "Restart failed" in text[-2000:] or self._pid(server) is None:
                break
            time.sleep(0.05)
        if not reloaded:
            # A reload that failed or hangs ("Reloading" and nothing after it: seen on a fresh
            # machine after a forced rcode on an upstream, the old instance waiting on its
            # forwards): restart the process, as an operator would (kubectl rollout restart).
            self._kill(server, term_wait=0.0 if server == "coredns" else 3.0)
            self.start(server, wait=not self._state()["fw"])
        if not self._state()["fw"]:      # a firewall fault may be what keeps it from answering
            self.wait_ready(servers=[server], timeout=30)

    # ------------------------------------------------------------------ faults
    def _where(self, where: str):
        """server name -> (namespace, address); namespace short name -> (namespace, None)."""
        if where in SERVERS:
            # a Service's packets arrive at its pod with the pod's address (after the DNAT)
            return SERVERS[where][0], LISTEN.get(where, SERVERS[where][1])
        if where in NAMESPACES:
            return where, None
        raise LabError("unknown server/namespace %r" % where)

    def _nft_rule(self, ns: str, chain: str, rule: str) -> None:
        script = ("add table ip %s\n"
                  "add chain ip %s input { type filter hook input priority 0; policy accept; }\n"
                  "add chain ip %s forward { type filter hook forward priority 0; policy accept; }\n"
                  "add rule ip %s %s %s\n") % (TABLE, TABLE, TABLE, TABLE, chain, rule)
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, chain, rule])
        self._save(st)

    def _port53(self, where: str, match: str, verdict: str) -> None:
        ns, addr = self._where(where)
        daddr = "ip daddr %s " % addr if addr else ""
        self._nft_rule(ns, "input", "%s%s %s" % (daddr, match, verdict))

    def block_tcp53(self, where: str) -> None:
        """Silently drop TCP to port 53 of a server (or a whole namespace)."""
        self._port53(where, "tcp dport 53", "drop")

    def reject_tcp53(self, where: str) -> None:
        """Answer TCP SYNs to port 53 with a RST."""
        self._port53(where, "tcp dport 53", "reject with tcp reset")

    def reject_udp53(self, where: str) -> None:
        """UDP to port 53 gets ICMP port-unreachable (3/3)."""
        self._port53(where, "udp dport 53", "reject with icmp type port-unreachable")

    def drop_udp53(self, where: str) -> None:
        """Silently drop UDP to port 53 (e.g. NodeLocal dropping packets)."""
        self._port53(where, "udp dport 53", "drop")

    def drop_aaaa(self, where: str) -> None:
        """Drop UDP DNS queries of type AAAA (QTYPE 28, QCLASS IN) at a server.

        nft payload matching cannot follow the variable-length QNAME, so this installs one
        raw-payload rule per QNAME wire length (2..255): the 5 bytes after the QNAME are
        00 (root label) 001c 0001."""
        ns, addr = self._where(where)
        daddr = "ip daddr %s " % addr if addr else ""
        rules = []
        for qlen in range(2, 256):
            # transport header 8 bytes + DNS header 12 + QNAME (incl. final 0) -> last QNAME byte
            bit = (8 + 12 + qlen - 1) * 8
            rules.append("add rule ip %s input %sudp dport 53 @th,%d,40 0x00001c0001 drop"
                         % (TABLE, daddr, bit))
        script = ("add table ip %s\n"
                  "add chain ip %s input { type filter hook input priority 0; policy accept; }\n"
                  % (TABLE, TABLE)) + "\n".join(rules) + "\n"
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, "input", "drop_aaaa %s" % daddr.strip()])
        self._save(st)

    def reject_admin(self, addr: str) -> None:
        """In the node: forwarded traffic to addr gets ICMP 3/13 (admin-prohibited)."""
        self._nft_rule("node", "forward", "ip daddr %s reject with icmp type admin-prohibited"
                       % addr)

    def settle_neighbour(self, addr: str, ns: str = "node", wait_s: float = 4.0) -> str:
        """Wait (bounded) until ``ns``'s neighbour entry for ``addr`` has left INCOMPLETE: for an
        address nobody holds, the ARP runs on ~3 s after the first packet (mcast_solicit
        probes, retrans_time apart), after a ``ping -W 1`` gave up, and then turns FAILED.
        Two reads of the table on either side of that turn differ. Returns ``ip neigh``'s line."""
        end = time.monotonic() + wait_s
        while True:
            shown = self.exec(ns, "ip", "neigh", "show", "to", addr, timeout=5).stdout
            if "INCOMPLETE" not in shown or time.monotonic() >= end:
                return shown
            time.sleep(0.1)

    def forget_neighbour(self, addr: str, ns: str = "node", wait_s: float = 4.0) -> None:
        """``ns`` holds no neighbour entry for ``addr``: the next packet starts a fresh ARP.

        An earlier probe of an address nobody holds leaves its entry INCOMPLETE while the
        kernel's ARP runs (mcast_solicit probes, retrans_time apart: ~3 s from the FIRST
        packet); a packet sent meanwhile joins that entry's queue and draws host-unreachable
        when the earlier timer ends, after less than ~3 s (a fresh machine saw 1.4 s: a ping
        of the previous test file, 1.6 s before). Waits (bounded) for the entry to leave
        INCOMPLETE (settle_neighbour), then deletes it."""
        self.settle_neighbour(addr, ns, wait_s)
        self.exec(ns, "ip", "neigh", "flush", "to", addr, check=False)

    def app_down(self) -> None:
        """Take the app host off the LAN (correct DNS answer, host down)."""
        self.exec("app", "ip", "link", "set", "eth0", "down", check=True)
        for addr in self._app_addresses():
            self.exec("node", "ip", "neigh", "flush", "to", addr, check=False)
        st = self._state()
        st["app_down"] = True
        self._save(st)

    def _app_addresses(self) -> tuple[str, ...]:
        return ("192.168.50.20", APP6) if self.ipv6 else ("192.168.50.20",)

    def _relearn_app(self) -> None:
        """The node as a fresh lab has it: a live neighbour entry for each of the app host's
        addresses. Packets sent while the link was down (app_down) left them FAILED (or
        INCOMPLETE, its ND/ARP still running), and _clear_v6 flushes every IPv6 entry of the
        node's LAN; the kernel learns again only when traffic asks. ``reach`` of an on-link
        address picks its control among the node's LIVE neighbours when it starts, so the next
        test would get a control or none depending on whether a concurrent job had already
        made the node resolve the app (a fresh machine saw ``silent`` for
        ``host-unreachable`` in test_reach_ipv6)."""
        for addr in self._app_addresses():
            self.forget_neighbour(addr)
            self.exec("node", "ping", "-c", "1", "-W", "1", addr, check=False, timeout=5)

    def stale_alive(self, serve: bool = False) -> None:
        """A live host takes the stale address 192.168.50.77 (node subnets recycle
        addresses): the app host gets it as a second address, so it answers ping and ARP and
        refuses port 80 (its web server binds 192.168.50.20 only). With ``serve`` a second web
        server listens on 192.168.50.77:80 too (both addresses serve the port)."""
        self.exec("app", "ip", "addr", "add", STALE_ADDRESS + "/24", "dev", "eth0", check=True)
        # The node may remember a failed ARP for the address from an earlier scenario.
        self.exec("node", "ip", "neigh", "flush", "to", STALE_ADDRESS, check=False)
        st = self._state()
        st["stale_alive"] = True
        self._save(st)
        if serve:
            log = open(self.rundir / "stale-www.log", "ab")
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.ns("app"), sys.executable, "-m", "http.server", "80",
                 "--bind", STALE_ADDRESS, "--directory", str(self.rundir / "www")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            log.close()
            (self.rundir / "stale-www.pid").write_text("%d\n" % p.pid)
            for _ in range(50):
                r = self.exec("node", "curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}",
                              "http://%s/" % STALE_ADDRESS, timeout=5)
                if r.stdout.strip() == "200":
                    break
                time.sleep(0.1)
            else:
                raise LabError("the web server on %s did not start" % STALE_ADDRESS)

    def drop_forward(self, addr: str) -> None:
        """In the node: forwarded traffic to addr is silently dropped (no ICMP at all)."""
        self._nft_rule("node", "forward", "ip daddr %s drop" % addr)

    def tcp53_to_legacy(self) -> None:
        """In the pod: its TCP queries to NodeLocal (169.254.25.10:53) are DNATed to the
        retired server (legacy), so only TCP answers are stale (e.g. a force_tcp forwarder
        that still points at the old server, or a mesh's DNS capture in the pod). UDP keeps the
        right path. The lab's own DNAT: on the node it cannot be done, node-cache's NOTRACK
        rules exempt 169.254.25.10:53 from conntrack and so from NAT."""
        nl = SERVERS["nodelocal"][1]
        script = ("add table ip %s\n"
                  "add chain ip %s output { type nat hook output priority -100; policy accept; }\n"
                  "add rule ip %s output ip daddr %s tcp dport 53 dnat to %s\n"
                  ) % (TABLE, TABLE, TABLE, nl, SERVERS["legacy"][1])
        self.exec("pod", "nft", "-f", "-", input=script, check=True)
        self.exec("pod", "conntrack", "-F", check=False)
        st = self._state()
        st["fw"].append(["pod", "output", "tcp53 to legacy"])
        self._save(st)

    def _clear_stale_alive(self) -> None:
        pidfile = self.rundir / "stale-www.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except OSError:
                    break
                for _ in range(20):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
            pidfile.unlink(missing_ok=True)
        if self.ns("app") in self._existing_ns():
            self.exec("app", "ip", "addr", "del", STALE_ADDRESS + "/24", "dev", "eth0", check=False)
        self.exec("node", "ip", "neigh", "flush", "to", STALE_ADDRESS, check=False)

    def force_rcode(self, name: str, rcode: str, server: str = "legacy") -> None:
        """Make `server` answer `rcode` for `name` and everything below it.

        Servers: legacy (unbound local-zone always_nxdomain / always_refuse; SERVFAIL via a
        forward to a closed port), upstream (bind9: NXDOMAIN by removing the records, REFUSED
        by allow-query none, SERVFAIL by an unloadable zone), coredns and nodelocal (a server
        block for the name with the template plugin's ``rcode``, reloaded). legacy and upstream
        restart; the caches in front of the changed server (CoreDNS, NodeLocal) reload so that
        no earlier answer is served from them."""
        rcode = rcode.upper()
        if rcode not in RCODES:
            raise LabError("rcode must be one of %s" % ", ".join(RCODES))
        if server not in DNS_SERVERS:
            raise LabError("force_rcode: server must be one of %s" % ", ".join(DNS_SERVERS))
        name = name.rstrip(".").lower()
        if not re.match(r"^[a-z0-9_.-]{1,253}$", name):
            raise LabError("bad name %r" % name)
        st = self._state()
        st["rcode"].setdefault(server, {})[name] = rcode
        self._save(st)
        self.flush(server)

    def flush(self, server: str = "upstream") -> None:
        """Reload (or restart) ``server`` and every cache in front of it: what an operator does
        after changing a DNS server's data (the NodeLocal remedies say as much)."""
        order = {"upstream": ["upstream", "coredns", "nodelocal"],
                 "legacy": ["legacy", "coredns", "nodelocal"],
                 "coredns": ["coredns", "nodelocal"], "nodelocal": ["nodelocal"]}[server]
        stopped = set(self._state().get("stopped", []))
        for s in order:
            if s not in stopped:
                self.reload(s)

    def resolv_options(self, *options: str) -> None:
        """Add an ``options`` line to the pod's resolv.conf (``single-request-reopen``,
        ``use-vc``, ``timeout:2``...); ``clear_faults`` puts the lab's file back. ip netns
        exec bind-mounts /etc/netns/<pod>/resolv.conf, so every later command sees it."""
        for o in options:
            if not re.match(r"^[a-z0-9][a-z0-9:-]{0,40}$", o):
                raise LabError("bad resolv.conf option %r" % o)
        (self._etc("pod") / "resolv.conf").write_text(
            configs.RESOLV_CONF + "options %s\n" % " ".join(options))
        st = self._state()
        st["resolv"] = list(options)
        self._save(st)

    def clear_faults(self) -> None:
        """Undo every fault switch: firewall tables, forced rcodes, stopped servers, app link.
        If any fault was active, CoreDNS and NodeLocal reload (fresh caches and forward
        health state), as after any fix in a cluster."""
        st = self._state()
        dirty = bool(st["fw"] or st["rcode"] or st["stopped"] or st["app_down"]
                     or st.get("stale_alive") or st.get("resolv") or st.get("pod_v4_only")
                     or st.get(wildcard.KEY))
        if st.get("stale_alive"):
            self._clear_stale_alive()
        have = self._existing_ns()
        for n in NAMESPACES:
            if self.ns(n) in have:
                self.exec(n, "nft", "delete", "table", "ip", TABLE, check=False)
                if self.ipv6:
                    self.exec(n, "nft", "delete", "table", "ip6", TABLE6, check=False)
        if self.ipv6:
            self._clear_v6(st)
        if st["app_down"] and self.ns("app") in have:
            self.exec("app", "ip", "link", "set", "eth0", "up", check=False)
            # link down removed the default route; put it back
            self.exec("app", "ip", "route", "replace", "default", "via", GATEWAYS["app"],
                      check=False)
            if self.ipv6:
                self.exec("app", "ip", "-6", "route", "replace", "default", "via", GATEWAYS6["app"],
                          check=False)
        if (st["app_down"] or self.ipv6) and self.ns("app") in have:
            self._relearn_app()  # after app_down, and after _clear_v6's flush of the node's ND
        if st.get("resolv") and self._etc("pod").is_dir():
            (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF)
        forced = [s for s in st["rcode"] if st["rcode"][s]]
        self._save({"rcode": {}, "fw": [], "stopped": [], "app_down": False})
        wildcard.cleared(self, st)
        for s in forced:
            if s in ("legacy", "upstream"):
                self._kill(s)
        for s in SERVERS:
            if self._pid(s) is None:
                self.start(s, wait=False)
        if dirty:
            for s in ("coredns", "nodelocal"):
                self.reload(s)
            self.wait_ready()
            if "coredns" in st["stopped"]:
                self._wait_coredns_pod()

    # ------------------------------------------------------------------ IPv6
    def _v6_sysctls(self, n: str) -> None:
        """Before any link exists: no Duplicate Address Detection (RFC 4862 5.4), so an
        address is usable the moment it is added (otherwise it stays "tentative" ~1-2 s and
        bind() fails with EADDRNOTAVAIL); addresses survive a link going down (app_down),
        as IPv4 ones do; the node routes IPv6."""
        for k in ("all", "default"):
            self.exec(n, "sysctl", "-qw", "net.ipv6.conf.%s.accept_dad=0" % k,
                      "net.ipv6.conf.%s.keep_addr_on_down=1" % k,
                      "net.ipv6.conf.%s.disable_ipv6=0" % k, check=True)
        self.exec(n, "sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0", check=True)
        if n == "node":
            self.exec(n, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", check=True)

    def _build_v6(self) -> None:
        (self.rundir / "ipv6").write_text("1\n")
        for (n, dev), addr in ADDRS6.items():
            self.exec(n, "ip", "-6", "addr", "add", addr, "dev", dev, "nodad", check=True)
        self.exec("node", "ip", "-6", "addr", "add", NODELOCAL6 + "/128", "dev", "lo", check=True)
        self.exec("node", "ip", "-6", "addr", "add", NODELOCAL6_LL + "/64", "dev", "vpod", "nodad", check=True)
        # the IPv6-only host on its own link; no IPv4 there at all
        _run(["ip", "link", "add", "name", "eth0", "netns", self.ns("host6"), "type", "veth",
              "peer", "name", "vh6", "netns", self.ns("node")])
        self.exec("host6", "ip", "-6", "addr", "add", HOST6 + "/64", "dev", "eth0", "nodad", check=True)
        self.exec("host6", "ip", "link", "set", "eth0", "up", check=True)
        self.exec("node", "ip", "-6", "addr", "add", "fd00:70::1/64", "dev", "vh6", "nodad", check=True)
        self.exec("node", "ip", "link", "set", "vh6", "up", check=True)
        # an empty IPv6 subnet on the node: an on-link prefix on the bridge where nobody lives
        # (the node's ND for any address there fails: ICMPv6 1/3 after ~3 s, RFC 4443 3.1)
        self.exec("node", "ip", "-6", "route", "add", EMPTY6_SUBNET, "dev", "br0", check=True)
        for n, gw in GATEWAYS6.items():
            self.exec(n, "ip", "-6", "route", "add", "default", "via", gw, check=True)
        (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF_V6)
        # the IPv6-only host is a client too (an IPv6-only pod): its own resolv.conf, so that
        # nothing in it ever reads the machine's
        etc6 = self._etc("host6")
        etc6.mkdir(parents=True, exist_ok=True)
        (etc6 / "resolv.conf").write_text(configs.RESOLV_CONF_V6)
        (etc6 / "hosts").write_text(configs.HOSTS)
        (self.rundir / "resolv-v4.conf").write_text(configs.RESOLV_CONF)
        (self.rundir / "resolv-v6.conf").write_text(configs.RESOLV_CONF_V6)
        (self.rundir / "resolv-v6ll.conf").write_text(configs.RESOLV_CONF_V6_LL)
        # NodeLocal on a link-local address: node-cache cannot listen there (CoreDNS 1.11.3's
        # bind plugin rejects "fe80::25:10%vpod" and skips an interface's link-local
        # addresses; 1.12 learned it), so the lab DNATs DNS to fe80::25:10 on the pod's link
        # to NodeLocal's fd00:25::10. The lab's own NAT rule (kube-proxy makes none like it).
        self.exec("node", "nft", "-f", "-", check=True, input=(
            "add table ip6 {t}\n"
            "add chain ip6 {t} pre {{ type nat hook prerouting priority -100; policy accept; }}\n"
            "add rule ip6 {t} pre iifname vpod ip6 daddr {ll} udp dport 53 dnat to {nl}\n"
            "add rule ip6 {t} pre iifname vpod ip6 daddr {ll} tcp dport 53 dnat to {nl}\n"
        ).format(t=TABLE_LL6, ll=NODELOCAL6_LL, nl=NODELOCAL6))
        # the Service range (kube-proxy DNATs kube-dns' fd00:233::3 to the CoreDNS pod)
        self.exec("node", "ip", "-6", "route", "add", "fd00:233::/112", "dev", "vcd", check=True)

    def _start_web6(self, name: str) -> None:
        ns, addr = WEB6[name]
        pidfile = self.rundir / ("%s.pid" % name)
        log = open(self.rundir / ("%s.log" % name), "ab")
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(ns), sys.executable, "-m", "http.server", "80",
             "--bind", addr, "--directory", str(self.rundir / "www")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        pidfile.write_text("%d\n" % p.pid)

    def web6_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for name, (_ns, addr) in WEB6.items():
            for _ in range(100):
                r = self.exec("node", "curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}",
                              "http://[%s]/" % addr, timeout=5)
                if r.stdout.strip() == "200":
                    break
                if time.monotonic() >= deadline:
                    raise LabError("IPv6 web server %s on [%s]:80 not ready" % (name, addr))
                time.sleep(0.1)

    def pod_ipv4_only(self) -> None:
        """The pod loses its IPv6 address and route (an IPv4-only pod in a cluster whose DNS
        still hands out AAAA: k3s-io/k3s#5849) and its resolv.conf points at the IPv4
        NodeLocal. clear_faults() gives them back."""
        self.exec("pod", "ip", "-6", "route", "del", "default", check=False)
        self.exec("pod", "ip", "-6", "addr", "del", ADDRS6[("pod", "eth0")], "dev", "eth0", check=False)
        (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF)
        st = self._state()
        st["pod_v4_only"] = True
        self._save(st)

    def _nft6_rule(self, ns: str, chain: str, rule: str) -> None:
        script = ("add table ip6 %s\n"
                  "add chain ip6 %s input { type filter hook input priority 0; policy accept; }\n"
                  "add chain ip6 %s forward { type filter hook forward priority 0; policy accept; }\n"
                  "add rule ip6 %s %s %s\n") % (TABLE6, TABLE6, TABLE6, TABLE6, chain, rule)
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, chain, rule])
        self._save(st)

    def reject_admin6(self, addr: str) -> None:
        """In the node: forwarded traffic to addr gets ICMPv6 1/1 (administratively prohibited)."""
        self._nft6_rule("node", "forward", "ip6 daddr %s reject with icmpv6 type admin-prohibited"
                        % addr)

    def reject_route6(self, addr: str) -> None:
        """In the node: forwarded traffic to addr gets ICMPv6 1/6 (reject route to destination)."""
        self._nft6_rule("node", "forward", "ip6 daddr %s reject with icmpv6 type reject-route" % addr)

    def drop_forward6(self, addr: str) -> None:
        """In the node: forwarded traffic to addr is silently dropped."""
        self._nft6_rule("node", "forward", "ip6 daddr %s drop" % addr)

    def drop_aaaa6(self, where: str) -> None:
        """Drop UDP DNS queries of type AAAA sent to a server's IPv6 address (drop_aaaa's
        raw-payload rules, family ip6: @th offsets count from the transport header alike)."""
        ns, _addr = self._where(where)
        addr = LISTEN6.get(where, SERVERS6.get(where))
        daddr = "ip6 daddr %s " % addr if addr else ""
        rules = ["add rule ip6 %s input %sudp dport 53 @th,%d,40 0x00001c0001 drop"
                 % (TABLE6, daddr, (8 + 12 + qlen - 1) * 8) for qlen in range(2, 256)]
        script = ("add table ip6 %s\n"
                  "add chain ip6 %s input { type filter hook input priority 0; policy accept; }\n"
                  % (TABLE6, TABLE6)) + "\n".join(rules) + "\n"
        self.exec(ns, "nft", "-f", "-", input=script, check=True)
        st = self._state()
        st["fw"].append([ns, "input", "drop_aaaa6 %s" % daddr.strip()])
        self._save(st)

    def _clear_v6(self, st: dict) -> None:
        if st.get("pod_v4_only"):
            self.exec("pod", "ip", "-6", "addr", "replace", ADDRS6[("pod", "eth0")], "dev", "eth0",
                      "nodad", check=False)
            self.exec("pod", "ip", "-6", "route", "replace", "default", "via", GATEWAYS6["pod"],
                      check=False)
            (self._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF_V6)
        # a failed ND entry from an earlier scenario would answer the next one at once
        self.exec("node", "ip", "-6", "neigh", "flush", "dev", "br0", check=False)


def _v6_listen(server: str, text: str) -> str:
    """A server's config with its IPv6 listener added beside the IPv4 one (CoreDNS listens on
    every address of its pod, node-cache binds fd00:25::10 through its Corefile)."""
    addr = SERVERS6.get(server)
    if addr is None or server in ("coredns", "nodelocal"):
        return text
    if server == "legacy":                    # unbound
        text = text.replace("    do-ip6: no\n", "    do-ip6: yes\n", 1)
        return text.replace("    port: 53\n", "    interface: %s\n    port: 53\n"
                            "    access-control: ::/0 allow\n" % addr, 1)
    return text.replace("listen-on-v6 {{ none; }};".replace("{{", "{").replace("}}", "}"),
                        "listen-on-v6 port 53 { %s; };" % addr, 1)


def _under(owner: str, forced: dict) -> bool:
    o = owner.rstrip(".").lower()
    return any(o == n or o.endswith("." + n) for n in forced)


def _reap() -> None:
    """Collect the exit status of daemons this process spawned that have ended."""
    for p in list(_CHILDREN):
        if p.poll() is not None:
            _CHILDREN.remove(p)


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False
