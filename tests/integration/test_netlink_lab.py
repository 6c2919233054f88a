"""The plain-socket netlink readers (toolkit.sysinfo.netlink: the route lookup, the neighbour
table, interface addresses, default gateways; and
toolkit.conntrack.ctnetlink: statistics, count/max, the table dump) give what pyroute2 gives,
on the lab's real kernel state: every route kind `ip route` can make, kube-proxy's DNAT
entries in the node's table, counters and timestamps switched on.

Both readers run in the same namespace one after the other; the conntrack comparison leaves
out what legitimately moves between two reads (CTA_TIMEOUT counts down, the API server's
flows come and go) and compares the DNS flows, which are ours and quiet, field for field.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab import KUBE_DNS, NODELOCAL

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")

pytestmark = pytest.mark.lab

ROUTES = r"""
import json, sys
from toolkit.sysinfo.routes import _RTN, route_to
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
out = []
with IPRoute() as ipr:
    for a in sys.argv[1:]:
        try:
            m = ipr.route("get", dst=a)[0]
        except NetlinkError as exc:
            ref = ["error", exc.code]
        else:
            oif = m.get("RTA_OIF")
            ifname = ipr.link("get", index=oif)[0].get("IFLA_IFNAME") if oif else None
            via = m.get("RTA_VIA")
            gw = m.get("RTA_GATEWAY") or (via.get("addr") if isinstance(via, dict) else None)
            ref = [ifname, gw, m.get("RTA_PREFSRC"), str(_RTN.get(m.get("type"), m.get("type")))]
        r = route_to(a)
        ours = (["error", r.detail.split()[2]] if r.detail.startswith("no route")
                else [r.interface, r.gateway, r.source, str(r.kind)])
        if ref[0] == "error":
            import errno
            ref = ["error", errno.errorcode[ref[1]]]
        out.append([a, ref, ours])
print(json.dumps(out))
"""

TABLES = r"""
import json, socket
from pyroute2 import IPRoute
from toolkit.sysinfo.routes import _nud, default_gateway, interface_networks, neighbours
ref = {"neigh": {}, "nets": {}, "gw": {}}
with IPRoute() as ipr:
    names = {link["index"]: link.get("IFLA_IFNAME") for link in ipr.get_links()}
    for dev in [None, *names.values()]:
        ref["neigh"][str(dev)] = [[str(m.get("NDA_DST")), names.get(m.get("ifindex")), m.get("NDA_LLADDR"),
                                   str(_nud(m.get("state", 0)))] for m in ipr.get_neighbours()
                                  if m.get("NDA_DST") is not None
                                  and (dev is None or names.get(m.get("ifindex")) == dev)]
    for dev in names.values():
        idx = ipr.link_lookup(ifname=dev)
        ref["nets"][dev] = [f"{m.get('IFA_ADDRESS')}/{m.get('prefixlen')}" for m in ipr.get_addr(index=idx[0])
                            if m.get("IFA_ADDRESS")]
    for fam, af in ((4, 2), (6, 10)):
        ref["gw"][str(fam)] = next((str(m.get("RTA_GATEWAY")) for m in ipr.get_default_routes(family=af)
                                    if m.get("RTA_GATEWAY")), None)
ours = {"neigh": {str(dev): [[n.address, n.interface, n.lladdr, str(n.state)] for n in neighbours(dev)]
                  for dev in [None, *names.values()]},
        "nets": {dev: list(interface_networks(dev)) for dev in names.values()},
        "gw": {str(f): default_gateway(f) for f in (4, 6)}}
print(json.dumps({"ref": ref, "ours": ours, "interfaces": list(names.values())}))
"""

CONNTRACK = r"""
import json
from toolkit.conntrack.ctnetlink import SocketReader
from tests.integration.netlink_reference import Pyroute2Reader
ref, ours = Pyroute2Reader(), SocketReader()
out = {"stats": [ref.stats(), ours.stats()], "count_max": [ref.count_max(), ours.count_max()],
       "dump": [list(ref.dump()), list(ours.dump())]}
print(json.dumps(out))
"""

ADDRESSES = ["192.168.50.20", "192.168.50.77", "10.244.1.1", KUBE_DNS, NODELOCAL, "127.0.0.1", "::1",
             "8.8.8.8", "255.255.255.255", "224.0.0.1", "192.168.60.53", "fe80::1", "2001:db8::1",
             "10.244.1.10", "0.0.0.0", "203.0.113.9", "198.51.100.9", "192.0.2.9", "2001:db8:dead::9"]


def _run(lab, ns: str, script: str, *args: str):
    p = lab.exec(ns, PY, "-c", script, *args, cwd=str(ROOT), timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("ns", ["pod", "node", "upstream"])
def test_route_lookup_matches_pyroute2(lab, ns):
    """Every route kind, gateways, on-link, local, broadcast, multicast, no route at all."""
    added = [["-4", "blackhole", "203.0.113.0/24"], ["-4", "prohibit", "198.51.100.0/24"],
             ["-4", "unreachable", "192.0.2.0/24"], ["-6", "blackhole", "2001:db8:dead::/48"]]
    for fam, *r in added:
        lab.exec(ns, "ip", fam, "route", "add", *r, check=True)
    try:
        rows = _run(lab, ns, ROUTES, *ADDRESSES)
    finally:
        for fam, *r in added:
            lab.exec(ns, "ip", fam, "route", "del", *r)
    assert len(rows) == len(ADDRESSES)
    assert [r for r in rows if r[1] != r[2]] == []
    kinds = {r[2][3] if r[2][0] != "error" else r[2][1] for r in rows}
    # blackhole, prohibit and unreachable routes are the kernel's errors to RTM_GETROUTE
    # (fib_props: EINVAL, EACCES, EHOSTUNREACH), both readers saying the same
    assert {"unicast", "local", "EINVAL", "EACCES", "EHOSTUNREACH"} <= kinds, kinds


@pytest.mark.parametrize(("ns", "peers"), [("pod", ["10.244.1.1"]), ("node", ["192.168.50.20", "192.168.50.77"])])
def test_neighbours_addresses_default_gateway_match_pyroute2(lab, ns, peers):
    """The neighbour table (a live peer, and on the node the seed's dead 192.168.50.77:
    INCOMPLETE or FAILED), every interface's networks, the default gateways."""
    for peer in peers:
        lab.exec(ns, "ping", "-c", "1", "-W", "1", peer, timeout=10)
    for peer in peers:
        # the dead address's ARP outlives ping by ~2 s: compare the FAILED entry, not reads
        # on either side of its turn from INCOMPLETE
        lab.settle_neighbour(peer, ns)
    # The node's table moves on its own (the control plane's peers go STALE, DELAY, FAILED):
    # a fresh machine once saw the two reads, milliseconds apart, straddle a change. Each
    # attempt reads both again; a reader that is wrong differs every time.
    for _attempt in range(3):
        got = _run(lab, ns, TABLES)
        if got["ours"] == got["ref"]:
            break
    assert got["ours"] == got["ref"]
    assert any(got["ref"]["nets"].values()) and any(got["ref"]["neigh"].values())
    if ns == "pod":
        assert got["ours"]["gw"]["4"] == "10.244.1.1"


def test_conntrack_reader_matches_pyroute2(lab):
    """The node's real table (kube-proxy's DNAT of the kube-dns Service, our lookups over UDP
    and TCP) with acct and timestamps on: counters, count/max and every DNS flow identical."""
    sysctls = {"net.netfilter.nf_conntrack_acct": "1", "net.netfilter.nf_conntrack_timestamp": "1"}
    old = {k: lab.exec("node", "sysctl", "-n", k).stdout.strip() for k in sysctls}
    try:
        for k, v in sysctls.items():
            lab.exec("node", "sysctl", "-w", f"{k}={v}", check=True)
        for server in (KUBE_DNS, NODELOCAL):
            for tcp in ((), ("+tcp",)):
                lab.exec("node", "dig", *tcp, f"@{server}", "kubernetes.default.svc.alpha.pm.k8s", "+tries=1",
                         "+time=2")
        got = _run(lab, "node", CONNTRACK)
    finally:
        for k, v in old.items():
            if v:
                lab.exec("node", "sysctl", "-w", f"{k}={v}")
    ref_stats, our_stats = got["stats"]
    assert [sorted(r) for r in ref_stats] == [sorted(r) for r in our_stats] and ref_stats
    assert [r["cpu"] for r in ref_stats] == [r["cpu"] for r in our_stats]
    assert got["count_max"][0][1] == got["count_max"][1][1] and got["count_max"][1][0] is not None

    def dns(entries):
        return sorted((json.dumps({k: v for k, v in e.items() if k != "timeout"}, sort_keys=True)
                       for e in entries if e and 53 in (e["orig"]["dport"], e["reply"]["sport"])))
    ref, ours = dns(got["dump"][0]), dns(got["dump"][1])
    assert ref == ours
    flows = [json.loads(e) for e in ours]
    assert any(e["orig"]["dst"] == KUBE_DNS and e["reply"]["src"] != KUBE_DNS for e in flows), flows  # DNAT
    assert {e["proto"] for e in flows} == {6, 17}
    # flows made after the sysctls (dig's own) carry CTA_TIMESTAMP and CTA_COUNTERS_*; older
    # ones (node-cache's long-lived TCP to the Service) do not
    assert any("start_ns" in e and "orig_packets" in e and "reply_packets" in e for e in flows), flows
    assert len(got["dump"][1]) >= len(flows) > 0
