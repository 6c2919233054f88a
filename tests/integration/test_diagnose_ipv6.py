"""`diagnose` over IPv6 in the dual-stack lab (Lab(ipv6=True)): one scenario per verdict and
the dual-stack cases, each asserting the verdict and its key evidence.

The pod (fd00:244:1::10, and 10.244.1.10) asks NodeLocal on its IPv6 address fd00:25::10;
the upstream (bind9) answers on fd00:60::53, the retired server (legacy) on fd00:50::53.
api6.corp.example: legacy's stale AAAA fd00:50::77 (nobody there: the node's ND fails and it
answers ICMPv6 1/3) against the upstream's fd00:50::20 (the app host, HTTP on 80).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.test_resolve_lab import PODTRIAGE

pytestmark = pytest.mark.lab

NL6, UP6, NODE6 = "fd00:25::10", "fd00:60::53", "fd00:244:1::1"
APP6, DEAD6, APP4 = "fd00:50::20", "fd00:50::77", "192.168.50.20"
REF6 = ("--reference", f"[{UP6}]:53")


def diagnose(lab, *args, timeout=40):
    import sys

    cmd = [PODTRIAGE] if PODTRIAGE else [sys.executable, "-m", "toolkit"]
    p = lab.exec("pod", *cmd, "diagnose", *args, "-o", "json", timeout=timeout)
    assert p.returncode in (0, 1), (p.returncode, p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    assert (p.returncode == 0) == (doc["verdict"] == "ok")
    return doc


def state(doc, address):
    return next(a["state"] for a in doc["addresses"] if a["address"] == address)


def test_bad_answer_over_ipv6(clean_lab6):
    doc = diagnose(clean_lab6, "api6.corp.example", "--port", "80", *REF6)
    assert (doc["verdict"], doc["confidence"]) == ("bad-answer", "high")
    top = doc["findings"][0]
    assert top["code"] == "stale-answer" and top["data"]["addresses"] == [DEAD6]
    assert NL6 in top["data"]["servers"] and top["data"]["reference_addresses"] == [APP6]
    assert state(doc, DEAD6) == "host-unreachable" and state(doc, APP6) == "up"
    # the node said so with ICMPv6 1/3 after its Neighbour Discovery gave up
    assert any(p["target"] == DEAD6 and p["result"] == "host-unreachable" and p["from"] == NODE6
               for p in doc["probes"])
    assert all(a["server"] in (NL6, UP6) for a in doc["answers"])


def test_port_closed_over_ipv6(clean_lab6):
    doc = diagnose(clean_lab6, "app6.example.org", "--port", "81", *REF6)
    assert doc["verdict"] == "port-closed" and doc["findings"][0]["code"] == "port-closed"
    assert state(doc, APP6) == "port-closed"


def test_filtered_over_ipv6(clean_lab6):
    clean_lab6.reject_admin6(APP6)
    doc = diagnose(clean_lab6, "app6.example.org", "--port", "80", *REF6)
    assert doc["verdict"] == "filtered" and doc["findings"][0]["code"] == "port-filtered"
    assert "ICMPv6 1/1" in doc["findings"][0]["summary"] and NODE6 in doc["findings"][0]["summary"]


def test_unreachable_host_over_ipv6(clean_lab6):
    clean_lab6.app_down()
    doc = diagnose(clean_lab6, "app6.example.org", "--port", "80", *REF6)
    assert doc["verdict"] == "unreachable-host" and doc["findings"][0]["code"] == "host-down"
    assert state(doc, APP6) == "host-unreachable"
    assert any(p["target"] == APP6 and p["from"] == NODE6 for p in doc["probes"])


def test_dns_unavailable_over_ipv6(clean_lab6):
    clean_lab6.stop("nodelocal")
    doc = diagnose(clean_lab6, "app6.example.org", "--port", "80")
    assert doc["verdict"] == "dns-unavailable"
    top = doc["findings"][0]
    # the IPv6 NodeLocal address, and how it failed: ICMPv6 port-unreachable / RST
    assert NL6 in top["summary"] and "refuses" in top["summary"]


def test_dual_stack_dead_aaaa_is_not_ok(clean_lab6):
    doc = diagnose(clean_lab6, "halfdead.example.org", "--port", "80")
    assert doc["verdict"] == "unreachable-host"
    top = doc["findings"][0]
    assert top["code"] == "family-fails" and top["severity"] == "critical"
    assert top["data"]["family"] == "ipv6" and top["data"]["serving"] == [APP4]
    # glibc in this dual-stack pod tries the IPv6 address first
    assert top["data"]["tried_first"] == DEAD6 and top["data"]["client_order"][0] == DEAD6
    assert top["summary"].startswith("IPv6 fails for halfdead.example.org")


def test_dual_stack_both_families_serve_is_ok(clean_lab6):
    doc = diagnose(clean_lab6, "dual.example.org", "--port", "80")
    assert doc["verdict"] == "ok"
    assert state(doc, APP6) == "up" and state(doc, APP4) == "up"


def test_aaaa_answers_in_an_ipv4_only_pod(clean_lab6):
    """k3s-io/k3s#5849: the pod has no IPv6, the DNS still hands out AAAA."""
    clean_lab6.pod_ipv4_only()
    doc = diagnose(clean_lab6, "app6.example.org", "--port", "80")
    assert doc["verdict"] == "bad-answer"
    top = doc["findings"][0]
    assert (top["code"], top["severity"]) == ("aaaa-unroutable", "critical")
    assert top["data"]["addresses"] == [APP6] and top["data"]["servers"] == ["169.254.25.10"]
    assert "template" in top["remedy"]
    doc = diagnose(clean_lab6, "dual.example.org", "--port", "80")
    assert doc["verdict"] == "bad-answer"
    top = doc["findings"][0]
    assert (top["code"], top["severity"]) == ("aaaa-unroutable", "warning")
    # glibc here sorts the unroutable AAAA last (RFC 6724 rule 1)
    assert top["data"]["client_order"] == [APP4, APP6] and top["data"]["serving"] == [APP4]


def test_link_local_nodelocal_nameserver(clean_lab6):
    """`nameserver fe80::25:10%eth0`: NodeLocal on a link-local address, reached through the
    pod's own interface; when it stops, the verdict names it with its scope."""
    conf = str(clean_lab6.rundir / "resolv-v6ll.conf")
    doc = diagnose(clean_lab6, "dual.example.org", "--port", "80", "--file", conf)
    assert doc["verdict"] == "ok"
    assert {a["server"] for a in doc["answers"]} == {"fe80::25:10%eth0"}
    clean_lab6.stop("nodelocal")
    doc = diagnose(clean_lab6, "dual.example.org", "--port", "80", "--file", conf)
    assert doc["verdict"] == "dns-unavailable" and "fe80::25:10%eth0" in doc["findings"][0]["summary"]


def test_ipv6_only_client_meets_a_only_answers(clean_lab6):
    """The IPv6-only host as the client (an IPv6-only pod without DNS64)."""
    import sys

    cmd = [PODTRIAGE] if PODTRIAGE else [sys.executable, "-m", "toolkit"]

    def run(name):
        p = clean_lab6.exec("host6", *cmd, "diagnose", name, "--port", "80", "-o", "json", timeout=40)
        assert p.returncode in (0, 1), p.stderr
        return json.loads(p.stdout)

    doc = run("www.example.org")
    top = doc["findings"][0]
    assert doc["verdict"] == "bad-answer" and (top["code"], top["severity"]) == ("a-unroutable", "critical")
    assert top["data"]["addresses"] == [APP4] and "dns64" in top["remedy"]
    doc = run("dual.example.org")
    top = doc["findings"][0]
    assert (top["code"], top["severity"]) == ("a-unroutable", "warning")
    assert top["data"]["serving"] == [APP6] and top["data"]["client_order"] == [APP6, APP4]
