"""Issue 26 item 4 (first scenario) on the real cluster of the lab: a CoreDNS rollout while
kube-proxy is down leaves DNS flows DNATed to the old pod; podtriage finds them, diagnose says
dns-unavailable with high confidence, and the remedy (kube-proxy back, then the finding's own
`conntrack -D`) clears them and lookups from the pod recover.

What the REAL components do here (kube-proxy 1.34.4, pkg/proxy/conntrack/cleanup.go):
- kube-proxy running through the rollout: its sync after the EndpointSlice change deletes the
  UDP entries to the old pod (CleanStaleEntries); a client's long-lived socket is moved to the
  new pod at once. Nothing stale is left to find.
- kube-proxy down during the rollout (this test): its rules stay in the kernel and still DNAT
  to the old pod; the long-lived UDP flow and every new flow go to the dead address.
  `conntrack -D` alone clears the entries, and the next packet makes them again through the
  stale rules; when kube-proxy comes back its first sync rewrites the rules and deletes the UDP
  entries itself. TCP entries (node-cache's force_tcp connects) are never touched by it.

The traffic: a pod's resolver with one long-lived UDP socket (fixed source port, as Envoy's in
kubernetes/kubernetes#125467) asking the kube-dns Service, and lookups through NodeLocal
DNSCache (force_tcp to the Service). Everything runs inside the lab's namespaces.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from toolkit.conntrack.stale import parse_iptables_save, parse_nft_json
from tests.lab import COREDNS_POD, KUBE_DNS, NODELOCAL, proxy_mode
from tests.lab.roll import ROLLED_POD, kube_proxy_start, roll_coredns, unroll_coredns

ROOT = Path(__file__).resolve().parents[2]
PT = str(ROOT / ".venv" / "bin" / "podtriage")
CLIENT_PORT = 40053
NAME = "kubernetes.default.svc.alpha.pm.k8s"

pytestmark = pytest.mark.lab

CLIENT = r"""
import random, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.settimeout(0.4)
name = sys.argv[3]
while True:
    q = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s.sendto(q, (sys.argv[1], 53))
    try:
        s.recv(4096)
        print("ok", flush=True)
    except OSError:
        print("lost", flush=True)
    time.sleep(0.5)
"""


def podtriage(lab, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return lab.exec("node", PT, *args, timeout=timeout)


def conntrack_json(lab, *args: str) -> dict:
    p = podtriage(lab, "conntrack", "--interval", "0", "-o", "json", *args)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def stale(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["code"] == "stale-dns-conntrack"]


def entries_to(lab, target: str, proto: str) -> list[str]:
    out = lab.exec("node", "conntrack", "-L", "-p", proto, "--reply-src", target).stdout
    return [line for line in out.splitlines() if line.strip()]


def slice_endpoints(lab) -> list[str]:
    """The kube-dns EndpointSlices' ready addresses, read with kubectl (as the plugin does)."""
    r = lab.kubectl("get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns",
                    "-o", "json")
    items = json.loads(r.stdout)["items"]
    return sorted({a for s in items for e in s.get("endpoints") or []
                   if (e.get("conditions") or {}).get("ready") for a in e["addresses"]})


def proxy_dnat(lab) -> set[str]:
    """The kube-dns endpoints in kube-proxy's own rules (iptables or nftables mode: the lab's
    PT_LAB_PROXY_MODE), read with podtriage's parsers (their unit tests hold real dumps)."""
    if proxy_mode() == "nftables":
        live = parse_nft_json(lab.exec("node", "nft", "-j", "list", "table", "ip", "kube-proxy").stdout)
    else:
        live = parse_iptables_save(lab.exec("node", "iptables-save", "-t", "nat").stdout)
    return set(live.addresses) if live is not None else set()


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def pod_lookup(lab) -> bool:
    r = lab.exec("pod", "dig", "+short", "+time=2", "+tries=1", "@" + NODELOCAL, NAME, timeout=10)
    return r.returncode == 0 and bool(r.stdout.strip())


@pytest.fixture
def rollout(lab, tmp_path):
    """A long-lived UDP client in the pod, kernel timestamps on in the node, then CoreDNS rolled
    to a new address with kube-proxy down. Afterwards: the lab as it was."""
    lab.exec("node", "sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1", check=True)
    with open(tmp_path / "client.log", "w") as log:
        client = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), "python3", "-c", CLIENT, KUBE_DNS,
                                   str(CLIENT_PORT), NAME], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait(lambda: (tmp_path / "client.log").read_text().count("ok") >= 3, 15, "the client's answers")
        roll_coredns(lab, ROLLED_POD, kube_proxy=False)
        for _ in range(3):  # lookups through NodeLocal DNSCache (they time out now)
            pod_lookup(lab)
        yield tmp_path / "client.log"
    finally:
        os.killpg(client.pid, signal.SIGTERM)
        client.wait(timeout=10)
        unroll_coredns(lab)
        lab.exec("node", "sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=0")


def test_rollout_with_kube_proxy_down_leaves_stale_dns_conntrack(lab, rollout, capsys):
    client_log = rollout
    live = slice_endpoints(lab)
    assert live == [ROLLED_POD]                       # the real EndpointSlice moved
    assert proxy_dnat(lab) == {COREDNS_POD}           # kube-proxy's rules did not

    # ---- before: the stale entries, with the dead target
    text_before = podtriage(lab, "conntrack", "--interval", "0", "--dns-endpoints", ",".join(live)).stdout
    doc = conntrack_json(lab, "--dns-endpoints", ",".join(live))
    assert doc["verdict"] == "dns-unavailable"
    (f,) = stale(doc)
    d = f["data"]
    assert d["dead_target"] == COREDNS_POD and d["port"] == 53 and d["services"] == [KUBE_DNS]
    assert "udp" in d["protos"] and CLIENT_PORT in d["source_ports"]
    assert d["live_endpoints"] == [ROLLED_POD] and d["endpoints_source"] == "flag"
    assert d["services"] == [KUBE_DNS]
    assert d["kube_proxy_lagging"] is True
    assert isinstance(d["ages"], list) and all(isinstance(a, int) for a in d["ages"])
    assert d["remedy_command"].startswith(f"conntrack -D -p udp --reply-src {COREDNS_POD} --reply-port-src 53")
    assert d["remedy_command"] in f["remedy"]

    # without the flag, on the node: kube-proxy's (stale) rules call the dead pod live: no finding
    assert not stale(conntrack_json(lab))

    # ---- diagnose on the node, for the pod's resolv.conf: the verdict and its confidence
    p = podtriage(lab, "diagnose", NAME, "--file", f"/etc/netns/{lab.ns('pod')}/resolv.conf",
                  "--dns-endpoints", ",".join(live), "-o", "json", "--deadline", "20")
    diag = json.loads(p.stdout)
    assert (diag["verdict"], diag["confidence"]) == ("dns-unavailable", "high"), diag["findings"]
    assert diag["findings"][0]["code"] == "stale-dns-conntrack"

    # ---- the remedy without kube-proxy: the entries go, and the stale rules make them again
    r = lab.exec("node", "sh", "-c", d["remedy_command"])
    deleted = int(re.search(r"(\d+) flow entries have been deleted", r.stderr).group(1))
    assert deleted >= 1
    wait(lambda: entries_to(lab, COREDNS_POD, "udp"), 10, "the client's flow DNATed again to the dead pod")

    # ---- the remedy as the finding says: kube-proxy back first, then the command
    kube_proxy_start(lab)
    wait(lambda: proxy_dnat(lab) == {ROLLED_POD}, 30, "kube-proxy's rules for the new pod")
    after_sync = len(entries_to(lab, COREDNS_POD, "udp"))  # real kube-proxy's own cleanup
    lab.exec("node", "sh", "-c", d["remedy_command"])
    assert entries_to(lab, COREDNS_POD, "udp") == []
    doc_after = conntrack_json(lab)                   # endpoints from kube-proxy's rules now
    assert not stale(doc_after)
    assert doc_after["dns_live_endpoints"] == {"addresses": [ROLLED_POD], "services": [KUBE_DNS],
                                               "source": f"kube-proxy-{proxy_mode()}"}
    text_after = podtriage(lab, "conntrack", "--interval", "0").stdout

    # ---- lookups from the pod recover: through NodeLocal DNSCache, and the long-lived socket
    assert wait(lambda: pod_lookup(lab), 20, "a lookup through NodeLocal DNSCache")
    n = client_log.read_text().count("ok")
    wait(lambda: client_log.read_text().count("ok") >= n + 3, 10, "the long-lived client's answers")

    with capsys.disabled():
        print(f"\n== conntrack before the remedy (--dns-endpoints {','.join(live)})\n{text_before}"
              f"\n== entries to {COREDNS_POD} left by kube-proxy's first sync: {after_sync} udp"
              f"\n== conntrack after the remedy\n{text_after}")
