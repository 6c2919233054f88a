"""Roll the lab's CoreDNS pod to a new address and back (issue 26: stale DNS conntrack).

A Deployment rollout replaces the CoreDNS pod with one at a new pod IP. The lab's CoreDNS is a
bare Pod (kubeobjects.coredns_pod) in its own namespace; rolling it here does what the node sees
of a rollout: the old container stops (SIGTERM, lameduck), the old pod IP disappears from the
network, a new container starts at a new IP, the kubelet stand-in reports the new podIP and
readiness, the REAL EndpointSlice controller moves the kube-dns endpoint and the REAL
kube-proxy (when it runs) rewrites its DNAT and cleans its UDP conntrack entries.

    roll_coredns(lab, "10.244.0.4", kube_proxy=False)   # kube-proxy down during the rollout
    ...
    unroll_coredns(lab)                                  # back to 10.244.0.3, kube-proxy up

Stdlib only.
"""
from __future__ import annotations

import json
import time

from . import COREDNS_POD, KUBE_DNS, LabError, components, coredns_key

ROLLED_POD = "10.244.0.4"


def _query(lab, server: str, name: str = "kubernetes.default.svc.alpha.pm.k8s") -> bool:
    """One UDP A query from the node's namespace (never from the host's); True on an answer."""
    r = lab.exec("node", "dig", "+short", "+time=1", "+tries=1", "@" + server, name, timeout=5)
    return r.returncode == 0 and bool(r.stdout.strip())


def kube_proxy_stop(lab) -> None:
    """kube-proxy goes down (its rules stay in the kernel, as when its pod crashes)."""
    lab._kill("kube-proxy-node")


def kube_proxy_start(lab) -> None:
    """kube-proxy comes back (its first sync rewrites the rules and cleans UDP conntrack)."""
    if lab._pid("kube-proxy-node") is None:
        from . import NODE_IP
        lab._start_kube_proxy("node", NODE_IP)


def _set_pod_ip(lab, old: str, new: str) -> None:
    lab.exec("coredns", "ip", "addr", "del", old + "/24", "dev", "eth0")
    lab.exec("coredns", "ip", "addr", "add", new + "/24", "dev", "eth0", check=True)
    lab.exec("coredns", "ip", "route", "replace", "default", "via", "10.244.0.1", check=True)
    # The old pod is gone: nobody answers ARP for its address any more.
    lab.exec("node", "ip", "neigh", "flush", "dev", "vcd")
    path = lab.rundir / "kubelet-node.json"
    m = json.loads(path.read_text())
    m["pods"]["kube-system/coredns"]["ips"] = [new]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(m, indent=1, sort_keys=True))
    tmp.replace(path)


def wait_endpoint(lab, address: str, timeout: float = 60.0) -> None:
    """Until the kube-dns EndpointSlice (the real controller's) lists ``address`` ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = lab.kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                        "kubernetes.io/service-name=kube-dns", "-o", "json")
        try:
            items = json.loads(r.stdout).get("items", [])
        except ValueError:
            items = []
        ready = {a for s in items for e in s.get("endpoints") or []
                 if (e.get("conditions") or {}).get("ready") for a in e.get("addresses", [])}
        if ready == {address}:
            return
        time.sleep(0.5)
    raise LabError("the kube-dns EndpointSlice did not move to %s" % address)


def roll_coredns(lab, new: str = ROLLED_POD, *, kube_proxy: bool = True) -> None:
    """The CoreDNS pod leaves and a new one comes up at ``new``. kube_proxy=False: kube-proxy
    is down for the rollout (and stays down: kube_proxy_start brings it back)."""
    old = _current_ip(lab)
    if not kube_proxy:
        kube_proxy_stop(lab)
    lab._kill("coredns", term_wait=8.0)        # SIGTERM: lameduck, then gone
    _set_pod_ip(lab, old, new)
    conf = lab._write_config("coredns")
    lab._spawn("coredns", "coredns", [components.path(coredns_key()), "-conf", conf], cwd=conf.parent)
    deadline = time.monotonic() + 30
    while not _query(lab, new) and time.monotonic() < deadline:
        time.sleep(0.2)
    st = lab._state()
    st["rolled_coredns"] = new
    lab._save(st)
    wait_endpoint(lab, new)


def _current_ip(lab) -> str:
    return lab._state().get("rolled_coredns") or COREDNS_POD


def unroll_coredns(lab) -> None:
    """CoreDNS back at its own address, kube-proxy running, the lab as it was built."""
    kube_proxy_start(lab)
    cur = _current_ip(lab)
    if cur != COREDNS_POD:
        lab._kill("coredns", term_wait=8.0)
        _set_pod_ip(lab, cur, COREDNS_POD)
        st = lab._state()
        st.pop("rolled_coredns", None)
        lab._save(st)
        lab.start("coredns")
        wait_endpoint(lab, COREDNS_POD)
    lab.exec("node", "conntrack", "-D", "-p", "udp", "--reply-src", cur)
    lab.exec("node", "conntrack", "-D", "-p", "tcp", "--reply-src", cur)
    deadline = time.monotonic() + 30
    while not _query(lab, KUBE_DNS) and time.monotonic() < deadline:
        time.sleep(0.5)
