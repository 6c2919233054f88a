"""The lab's real Kubernetes under the DNS path (issues 21 and 22): kube-apiserver 1.34 with its
controllers, the kubelet stand-in's Nodes and pod status, kube-proxy's own ClusterIP DNAT to the
real CoreDNS pod, node-cache's NOTRACK rules. Marked ``lab``: needs root."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab import COREDNS_POD, KUBE_DNS, NODE_IP, NODELOCAL

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
K8S = "v1.34.4"


def dig(lab, ns, server, name, *opts):
    return lab.exec(ns, "dig", "+time=2", "+tries=1", "@" + server, name, *opts, timeout=15).stdout


def short(lab, ns, server, name, *opts):
    return dig(lab, ns, server, name, "+short", *opts).split()


def test_kubectl_version_shows_the_real_server(lab):
    # what the README says: kubectl --kubeconfig "$(scripts/lab kubeconfig)" version -o json,
    # run where the server's address exists (a lab namespace)
    p = subprocess.run([sys.executable, "-m", "tests.lab", "--prefix", lab.prefix, "kubeconfig"],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert p.returncode == 0, p.stderr
    assert Path(p.stdout.strip()) == lab.kubeconfig() and lab.kubeconfig().exists()
    server = json.loads(lab.kubeconfig().read_text())["clusters"][0]["cluster"]["server"]
    assert server == "https://10.0.10.10:6443"          # an address that exists only in the lab
    p = lab.kubectl("version", "-o", "json")
    assert p.returncode == 0, p.stderr
    v = json.loads(p.stdout)
    assert v["serverVersion"]["gitVersion"] == K8S
    assert v["clientVersion"]["gitVersion"].startswith("v1.34.")
    # no address of the host's own namespace is the server's
    host = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert "10.0.10.10/" not in host


def test_nodes_and_pods_are_objects_with_status(lab):
    with lab.api() as c:
        node = c.get("/api/v1/nodes/node")
        ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "True"
        assert {"type": "InternalIP", "address": NODE_IP} in node["status"]["addresses"]
        pods = {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]): p
                for p in c.get("/api/v1/pods")["items"]}
    want = {"kube-system/coredns": COREDNS_POD, "wxwork/backend": "192.168.50.20",
            "wxwork/pod": "10.244.1.10", "kube-system/nodelocaldns-node": NODE_IP,
            "kube-system/kube-proxy-node": NODE_IP}
    for key, ip in want.items():
        p = pods[key]
        assert p["spec"]["nodeName"] == "node", key
        assert p["status"]["phase"] == "Running" and p["status"]["podIP"] == ip, (key, p["status"])
        assert any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"]["conditions"]), key


def test_kube_dns_has_a_real_endpointslice_with_the_coredns_pod(lab):
    with lab.api() as c:
        svc = c.get("/api/v1/namespaces/kube-system/services/kube-dns")
        slices = c.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
                       labelSelector="kubernetes.io/service-name=kube-dns")["items"]
    assert svc["spec"]["clusterIP"] == KUBE_DNS
    v4 = [s for s in slices if s["addressType"] == "IPv4"]
    assert len(v4) == 1
    s = v4[0]
    # made by the real EndpointSlice controller, for the pod the kubelet stand-in reports Ready
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslice-controller.k8s.io"
    (ep,) = s["endpoints"]
    assert ep["addresses"] == [COREDNS_POD] and ep["conditions"]["ready"] is True
    assert ep["targetRef"]["name"] == "coredns" and ep["nodeName"] == "node"
    assert {(p["protocol"], p["port"]) for p in s["ports"]} >= {("UDP", 53), ("TCP", 53)}


def test_kubernetes_service_resolves_through_nodelocal_kube_proxy_and_coredns(clean_lab):
    lab = clean_lab
    with lab.api() as c:
        kubernetes_ip = c.get("/api/v1/namespaces/default/services/kubernetes")["spec"]["clusterIP"]
        # a Service made now: only CoreDNS's kubernetes plugin, watching the API, can know it
        name = "probe-%s" % secrets.token_hex(3)
        svc = c.create({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "namespace": "wxwork"},
                        "spec": {"ports": [{"port": 80}], "selector": {"app": name}}})
    try:
        lab.exec("node", "conntrack", "-D", "-p", "tcp", "--orig-dst", KUBE_DNS, check=False)
        got = []
        for _ in range(20):            # the plugin's watch brings it within a moment
            got = short(lab, "pod", NODELOCAL, "%s.wxwork.svc.alpha.pm.k8s" % name)
            if got:
                break
            time.sleep(0.25)
        assert got == [svc["spec"]["clusterIP"]]
        assert short(lab, "pod", NODELOCAL, "kubernetes.default.svc.alpha.pm.k8s") == [kubernetes_ip]
        assert kubernetes_ip == "10.233.0.1"
        # NodeLocal's miss went over TCP (force_tcp) to the Service address, which kube-proxy
        # DNATed to the CoreDNS pod and masqueraded (the node's address is outside the
        # cluster CIDR)
        ct = lab.exec("node", "conntrack", "-L", "-p", "tcp", "--orig-dst", KUBE_DNS).stdout
        line = next(x for x in ct.splitlines() if "dport=53" in x)
        assert "src=%s" % NODE_IP in line and "src=%s dst=10.244.0.1" % COREDNS_POD in line, ct
    finally:
        with lab.api() as c:
            c.delete("/api/v1/namespaces/wxwork/services/%s" % name)


def test_pod_query_to_the_service_is_dnated_by_kube_proxy(lab):
    lab.exec("node", "conntrack", "-D", "-p", "udp", "--orig-src", "10.244.1.10",
             "--orig-dst", KUBE_DNS, check=False)
    assert short(lab, "pod", KUBE_DNS, "www.example.org") == ["192.168.50.20"]
    ct = lab.exec("node", "conntrack", "-L", "-p", "udp", "--orig-src", "10.244.1.10",
                  "--orig-dst", KUBE_DNS).stdout
    (line,) = [x for x in ct.splitlines() if "dport=53" in x]
    # the reply tuple comes from the CoreDNS pod: a DNAT, and the pod kept its own source
    assert "src=%s dst=10.244.1.10 sport=53" % COREDNS_POD in line, line
    # ... made by kube-proxy's rules (nothing of the lab's own)
    if lab.kube_proxy_config("node", NODE_IP)["mode"] == "nftables":
        rules = lab.exec("node", "nft", "list", "table", "ip", "kube-proxy").stdout
        assert "kube-system/kube-dns/udp/dns__%s/53" % COREDNS_POD in rules
        assert "meta l4proto udp dnat to %s:53" % COREDNS_POD in rules, rules
    else:
        nat = lab.exec("node", "iptables-save", "-t", "nat").stdout
        sep = [x for x in nat.splitlines() if "kube-system/kube-dns:dns\"" in x and "DNAT" in x]
        assert sep and "--to-destination %s:53" % COREDNS_POD in sep[0], nat
    assert "ptlab" not in lab.exec("node", "nft", "list", "tables").stdout


def test_nodelocal_notrack_leaves_no_conntrack_entry(lab):
    raw = lab.exec("node", "iptables-save", "-t", "raw").stdout
    for rule in ("-A PREROUTING -d 169.254.25.10/32 -p udp -m udp --dport 53 -j NOTRACK",
                 "-A PREROUTING -d 169.254.25.10/32 -p tcp -m tcp --dport 53 -j NOTRACK",
                 "-A OUTPUT -s 169.254.25.10/32 -p udp -m udp --sport 53 -j NOTRACK"):
        assert rule in raw, raw
    filt = lab.exec("node", "iptables-save", "-t", "filter").stdout
    assert "-A INPUT -d 169.254.25.10/32 -p udp -m udp --dport 53 -j ACCEPT" in filt
    lab.exec("node", "conntrack", "-F", check=False)
    for transport in ("+notcp", "+tcp"):
        assert short(lab, "pod", NODELOCAL, "n%s.example.org" % secrets.token_hex(3), transport) == []
    ct = lab.exec("node", "conntrack", "-L").stdout
    assert NODELOCAL not in ct, ct
    # ... while the node's own query to CoreDNS behind it is tracked (and NATed)
    assert "dst=%s" % KUBE_DNS in ct, ct


def test_stopped_nodelocal_tears_its_rules_down(clean_lab):
    """node-cache removes its iptables rules when it exits (TeardownNetworking): the pod's
    queries to 169.254.25.10 are then tracked again (and refused: nothing listens)."""
    lab = clean_lab
    lab.stop("nodelocal")
    assert "NOTRACK" not in lab.exec("node", "iptables-save", "-t", "raw").stdout
    lab.exec("pod", "dig", "+time=1", "+tries=1", "@" + NODELOCAL, "www.example.org", timeout=10)
    ct = lab.exec("node", "conntrack", "-L", "-p", "udp", "--orig-dst", NODELOCAL).stdout
    assert "UNREPLIED" in ct, ct
    lab.start("nodelocal")
    assert "NOTRACK" in lab.exec("node", "iptables-save", "-t", "raw").stdout


def test_running_versions_are_the_pinned_ones(lab):
    v = lab.running_versions()
    assert v["API server /version"].startswith(K8S)
    assert v["kube-proxy"] == "Kubernetes %s" % K8S
    assert v["coredns"].startswith("CoreDNS-1.12.1") or v["coredns"].startswith("CoreDNS-1.14.7")
    assert v["node-cache (engine)"].startswith("CoreDNS-1.11.3")
    assert "3.6.4" in v["etcd"]


def test_second_node_registers_and_has_its_own_kube_proxy(lab):
    from tests.lab.cluster import ClusterLab

    cl = ClusterLab(lab).up()
    try:
        with lab.api() as c:
            node2 = c.get("/api/v1/nodes/node2")
            assert {"type": "InternalIP", "address": "10.0.12.2"} in node2["status"]["addresses"]
            for name, ip in (("pod2a", "10.244.2.10"), ("pod2b", "10.244.4.10"), ("pod1b", "10.244.3.10")):
                p = c.wait_for("/api/v1/namespaces/wxwork/pods/%s" % name,
                               lambda p: (p.get("status") or {}).get("podIP"), timeout=20)
                assert p["status"]["podIP"] == ip
            assert c.get("/api/v1/namespaces/wxwork/pods/pod2a")["spec"]["nodeName"] == "node2"
        # node2's own kube-proxy DNATs the Service for its pods; its node-cache answers them
        assert short(lab, "pod2a", KUBE_DNS, "www.example.org") == ["192.168.50.20"]
        ct = lab.exec("node2", "conntrack", "-L", "-p", "udp", "--orig-dst", KUBE_DNS).stdout
        assert "src=%s dst=10.244.2.10" % COREDNS_POD in ct, ct
        assert short(lab, "pod2a", NODELOCAL, "www.example.org") == ["192.168.50.20"]
        assert "NOTRACK" in lab.exec("node2", "iptables-save", "-t", "raw").stdout
    finally:
        cl.down()
    with lab.api() as c:
        assert c.get_or_none("/api/v1/nodes/node2") is None
        assert c.get_or_none("/api/v1/namespaces/wxwork/pods/pod2a") is None


def test_force_tcp_reaches_the_upstream_through_coredns(clean_lab):
    """CoreDNS's forward uses the transport its client used (no prefer_udp in the seed's
    Corefile): NodeLocal's force_tcp makes CoreDNS ask the upstream over TCP too. A firewall
    that drops only TCP to the upstream then fails every lookup that goes through NodeLocal,
    while the upstream and CoreDNS still answer over UDP (the dnsmasq stand-in forwarded over UDP
    and hid this)."""
    lab = clean_lab
    lab.block_tcp53("upstream")
    name = "t%s.example.org" % secrets.token_hex(3)
    assert "status: NXDOMAIN" in dig(lab, "pod", "192.168.60.53", name)
    assert "status: NXDOMAIN" in dig(lab, "pod", KUBE_DNS, "c" + name)
    out = lab.exec("pod", "dig", "+time=9", "+tries=1", "@" + NODELOCAL, "n" + name, timeout=20).stdout
    assert "status: SERVFAIL" in out or "timed out" in out, out
