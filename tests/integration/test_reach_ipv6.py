"""`podtriage reach` over IPv6 in the dual-stack lab (root): the same classification as IPv4.

Pod fd00:244:1::10 routes via the node fd00:244:1::1; the app host fd00:50::20 serves HTTP on
80, nothing on 81; nobody holds fd00:50::77 on the node LAN, so the node answers ICMPv6 1/3
(address unreachable) after its Neighbour Discovery gives up (~3 s). The IPv6-only host
fd00:70::30 serves HTTP on 80. Independent cases run concurrently.
"""
import json

import pytest

from tests.integration.test_reach import PODTRIAGE, ENV, ROOT, finish, probes  # noqa: F401
import subprocess
import time

pytestmark = pytest.mark.lab

APP6, DEAD6, HOST6, NODE6 = "fd00:50::20", "fd00:50::77", "fd00:70::30", "fd00:244:1::1"


def start(lab, ns, *args, drop_net_raw=False):
    cmd = [PODTRIAGE, "reach", *args, "-o", "json"]
    if drop_net_raw:
        cmd = ["capsh", "--drop=cap_net_raw", "--", "-c", " ".join(cmd)]
    return time.monotonic(), subprocess.Popen(["ip", "netns", "exec", lab.ns(ns), *cmd], env=ENV,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                              cwd=ROOT)


def test_open_closed_dead_ipv6only_over_raw_probes(clean_lab6):
    lab = clean_lab6
    # This test times the node's ND for DEAD6 (~3 s from the FIRST packet to it): no earlier
    # test's packet may have started that timer, and no concurrent run may send to DEAD6
    # (two runs share the node's one neighbour entry; the later one's SYN would draw
    # host-unreachable early, as test_reach.py saw over IPv4). The node's own run ("nd")
    # therefore goes after the others.
    lab.forget_neighbour(DEAD6)
    jobs = {"open": start(lab, "pod", APP6, "--port", "80"),
            "closed": start(lab, "pod", APP6, "--port", "81"),
            "dead": start(lab, "pod", DEAD6, "--port", "80"),
            "v6only": start(lab, "pod", "v6only.example.org", "--port", "80"),
            "nd-alive": start(lab, "node", APP6, "--port", "80")}
    res = {k: finish(v) for k, v in jobs.items()}
    res["nd"] = finish(start(lab, "node", DEAD6, "--port", "80"))
    docs = {k: json.loads(v[1]) for k, v in res.items()}

    d = docs["open"]
    addr, pr = probes(d, APP6)
    assert (res["open"][0], d["verdict"], addr["state"]) == (0, "ok", "up")
    assert pr[("tcp-syn", 80)]["result"] == "open" and pr[("tcp-syn", 80)]["privileged"]
    assert pr[("icmp-echo", None)]["result"] == "reply"
    assert addr["route"]["gateway"] == NODE6 and d["lost"] == []

    d = docs["closed"]
    addr, pr = probes(d, APP6)
    assert (d["verdict"], addr["state"]) == ("port-closed", "port-closed")
    assert pr[("tcp-syn", 81)]["result"] == "closed" and pr[("tcp-syn", 81)]["detail"] == "RST"

    # ICMPv6 1/3 from the last router after its ND failed, ~3 s after the SYN
    d = docs["dead"]
    addr, pr = probes(d, DEAD6)
    assert (d["verdict"], addr["state"]) == ("unreachable-host", "host-unreachable")
    syn = pr[("tcp-syn", 80)]
    assert (syn["result"], syn["icmp_type"], syn["icmp_code"], syn["reply_from"]) == \
        ("host-unreachable", 1, 3, NODE6)
    # the SYN and the echo share the node's entry: whichever left first waited the ~3 s
    unreachable = [p["rtt_ms"] for p in addr["probes"] if p["result"] == "host-unreachable"]
    assert 2500 < max(unreachable) < 4500, unreachable
    assert addr["control_ok"] is True

    d = docs["v6only"]
    assert [a["address"] for a in d["addresses"]] == [HOST6] and d["verdict"] == "ok"

    # on-link from the node: our own Neighbor Solicitations, no advertisement
    d = docs["nd"]
    addr, pr = probes(d, DEAD6)
    assert addr["route"]["on_link"] and addr["control_ok"] is True, addr["control"]
    assert addr["state"] == "host-unreachable"
    assert pr[("nd", None)]["result"] == "silence" and "3 solicitations" in pr[("nd", None)]["detail"]
    d = docs["nd-alive"]
    addr, pr = probes(d, APP6)
    assert pr[("nd", None)]["result"] == "reply" and "is at" in pr[("nd", None)]["detail"]


def test_icmpv6_policy_and_routing_errors(clean_lab6):
    lab = clean_lab6
    lab.reject_admin6(HOST6)
    lab.reject_route6(APP6)
    jobs = {"admin": start(lab, "pod", HOST6, "--port", "80"),
            "reject-route": start(lab, "pod", APP6, "--port", "80"),
            "no-route": start(lab, "pod", "fd00:dead::1", "--port", "80")}
    docs = {k: json.loads(finish(v)[1]) for k, v in jobs.items()}
    for key, addr, code, state, verdict in (("admin", HOST6, 1, "filtered", "filtered"),
                                            ("reject-route", APP6, 6, "filtered", "filtered"),
                                            ("no-route", "fd00:dead::1", 0, "routing", "unreachable-host")):
        a, pr = probes(docs[key], addr)
        syn = pr[("tcp-syn", 80)]
        assert (a["state"], syn["icmp_type"], syn["icmp_code"], syn["reply_from"]) == (state, 1, code, NODE6), key
        assert docs[key]["verdict"] == verdict, (key, docs[key]["verdict"])


def test_without_net_raw_ipv6_reads_icmpv6_via_recverr(clean_lab6):
    lab = clean_lab6
    rc, out, err, _ = finish(start(lab, "pod", DEAD6, "--port", "80", drop_net_raw=True))
    d = json.loads(out)
    addr, pr = probes(d, DEAD6)
    conn = pr[("tcp-connect", 80)]
    assert addr["state"] == "host-unreachable" and (conn["icmp_type"], conn["icmp_code"]) == (1, 3)
    assert conn["reply_from"] == NODE6 and not conn["privileged"]
    assert "NET_RAW" not in d["capabilities"]
    assert any("IPV6_RECVERR" in line for line in d["lost"])


def test_onlink_silence_with_no_live_neighbour_on_the_link_says_what_it_cannot_tell(clean_lab6):
    """The node's empty on-link subnet fd00:99::/64: our solicitations go unanswered, but the
    node has no live neighbour (and no gateway) in that subnet to serve as a control, so a
    dead address cannot be told from a dead link: silent, and the summary says why."""
    rc, out, err, _ = finish(start(clean_lab6, "node", "fd00:99::5", "--port", "80"))
    d = json.loads(out)
    addr, pr = probes(d, "fd00:99::5")
    assert addr["route"]["on_link"] and addr["control"] == [] and addr["state"] == "silent"
    assert pr[("nd", None)]["result"] == "silence"
    assert addr["summary"] == ("fd00:99::5: no neighbor advertisement on br0, and no live neighbour there "
                               "to check the link with: nobody holds the address, or the link itself is down")
    assert (rc, d["verdict"]) == (5, "indeterminate")
