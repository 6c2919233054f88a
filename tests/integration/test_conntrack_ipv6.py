"""`podtriage conntrack` over IPv6 in the dual-stack lab: the node's entries for the pod's
DNS flows to the IPv6 NodeLocal address, answered and unreplied; conntrack-tools is the
oracle."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_resolve_lab import PODTRIAGE

pytestmark = pytest.mark.lab

NL6, POD6 = "fd00:25::10", "fd00:244:1::10"


def ct(lab):
    import sys

    cmd = [PODTRIAGE] if PODTRIAGE else [sys.executable, "-m", "toolkit"]
    p = lab.exec("node", *cmd, "conntrack", "--interval", "0.2", "-o", "json", timeout=30)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def oracle(lab, *args):
    p = lab.exec("node", "conntrack", "-L", "-f", "ipv6", "-p", "udp", "--dport", "53", *args, timeout=10)
    return [line for line in p.stdout.splitlines() if line.startswith("udp")]


def test_ipv6_dns_flows_answered_and_unreplied(clean_lab6):
    lab = clean_lab6
    # conntrack tracks a namespace's IPv6 flows once a hook there needs it
    lab._nft6_rule("node", "input", "ct state new counter")
    lab.exec("node", "conntrack", "-F", check=False)
    for i in range(3):
        lab.exec("pod", "dig", "+time=1", "+tries=1", "@" + NL6, "app6.example.org", "AAAA", timeout=10)
    doc = ct(lab)
    v6 = [e for e in doc["dns_entries"] if e["family"] == "ipv6" and e["orig_dst"] == NL6]
    assert len(v6) == len(oracle(lab)) == 3
    assert all(e["orig_src"] == POD6 and not e["unreplied"] for e in v6)
    assert {e["backend"] for e in v6} == {f"[{NL6}]:53"}

    # NodeLocal stops: each query is confirmed (accepted, then answered by ICMPv6 port
    # unreachable, a RELATED packet) and its entry stays UNREPLIED. (A drop in the input
    # hook would leave no entry at all: conntrack confirms an entry only when its first
    # packet leaves the hooks accepted.)
    lab.stop("nodelocal")
    for i in range(3):
        lab.exec("pod", "dig", "+time=1", "+tries=1", "@" + NL6, f"n{i}.example.org", "AAAA", timeout=10)
    doc = ct(lab)
    unreplied = [e for e in doc["dns_entries"] if e["family"] == "ipv6" and e["unreplied"]]
    assert len(unreplied) == len([x for x in oracle(lab) if "[UNREPLIED]" in x]) == 3
    assert len(oracle(lab)) == len([e for e in doc["dns_entries"] if e["family"] == "ipv6"])
    (backend,) = [b for b in doc["dns_backends"] if b["backend"] == f"[{NL6}]:53"]
    assert (backend["unreplied"], backend["entries"]) == (3, 6)


def test_race_test_over_ipv6_clean_path(clean_lab6):
    """The A/AAAA race test against the IPv6 NodeLocal: every mode answered on a clean path."""
    import sys

    cmd = [PODTRIAGE] if PODTRIAGE else [sys.executable, "-m", "toolkit"]
    p = clean_lab6.exec("pod", *cmd, "conntrack", "race-test", NL6, "--count", "50", "-o", "json",
                        timeout=60)
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "ok", doc["findings"]
    modes = {m["mode"]: m for m in doc["modes"]}
    assert set(modes) >= {"parallel", "reopen", "tcp"}
    assert all(m["lost"] == 0 and m["answered"] == 2 * m["lookups"] for m in modes.values())
