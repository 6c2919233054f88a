"""Stale DNS conntrack (issue 26): the live endpoints from kube-proxy's real rules, the DNS
flows DNATed elsewhere, and the stale-dns-conntrack finding's data contract.

The samples are the lab's real components (tests/lab, kube-proxy 1.34.4, CoreDNS, node-cache):
- kube-proxy-1.34.4-iptables-nat.txt: `iptables-save -t nat` in the node after CoreDNS moved
  to 10.244.0.4 with kube-proxy running;
- kube-proxy-1.34.4-iptables-nat-lagging.txt: the same while kube-proxy was down during the
  move (its rules still DNAT to the old pod 10.244.0.3);
- kube-proxy-1.34.4-nftables.json: `nft -j list table ip kube-proxy` of the lab built with
  PT_LAB_PROXY_MODE=nftables (CoreDNS at 10.244.0.3);
- proc_nf_conntrack_stale_lab.txt: `conntrack -L -o extended` (the /proc/net/nf_conntrack
  format) in the node right after that move: a pod's long-lived UDP socket (sport 40053),
  node-side UDP lookups and node-cache's TCP connects (SYN_SENT) still DNATed to 10.244.0.3.
"""
import json
from pathlib import Path

import pytest

from toolkit.conntrack.entries import FlowProto, from_netlink_dict, parse_proc_line
from toolkit.conntrack.findings import conntrack_findings, stale_findings
from toolkit.conntrack.stale import (EndpointsSource, LiveEndpoints, SocketOwner, StaleCheck, parse_iptables_save,
                                     parse_nft_json, remedy_command, split_flag, stale_groups)
from toolkit.model import Severity, Verdict, derive_verdict, to_jsonable

from tests.unit.test_conntrack_findings import snap

DATA = Path(__file__).parent / "data" / "conntrack"
STALE = [e for line in (DATA / "proc_nf_conntrack_stale_lab.txt").read_text().splitlines()
         if (e := parse_proc_line(line)) is not None]
FLAG = LiveEndpoints(addresses=("10.244.0.4",), source=EndpointsSource.FLAG)
CONTRACT = {"dead_target": str, "port": int, "services": list, "entries": int, "protos": list,
            "source_ports": list, "timeouts": list, "ages": (list, type(None)), "owners": list,
            "live_endpoints": list, "endpoints_source": str, "remedy_command": str}


def test_iptables_rules_of_real_kube_proxy():
    live = parse_iptables_save((DATA / "kube-proxy-1.34.4-iptables-nat.txt").read_text())
    assert live == LiveEndpoints(addresses=("10.244.0.4",), source=EndpointsSource.IPTABLES,
                                 services=("10.233.0.3",))
    lagging = parse_iptables_save((DATA / "kube-proxy-1.34.4-iptables-nat-lagging.txt").read_text())
    assert lagging is not None and lagging.addresses == ("10.244.0.3",)


def test_nftables_rules_of_real_kube_proxy():
    live = parse_nft_json((DATA / "kube-proxy-1.34.4-nftables.json").read_text())
    assert live == LiveEndpoints(addresses=("10.244.0.3",), source=EndpointsSource.NFTABLES,
                                 services=("10.233.0.3",))


@pytest.mark.parametrize("text", ["", "garbage", "{}", "[]", '{"nftables": 3}', '{"nftables": [1, null, "x"]}',
                                  '{"nftables": [{"chain": 1, "rule": [], "map": "x"}]}'])
def test_rules_without_kube_dns_say_nothing(text):
    assert parse_nft_json(text) is None
    assert parse_iptables_save(text) is None
    other = '-A KUBE-SEP-X -p tcp -m comment --comment "default/kubernetes:https" -j DNAT --to-destination 1.2.3.4:6443'
    assert parse_iptables_save(other) is None


def test_service_without_endpoints_is_named_with_none():
    # kube-proxy's "has no endpoints" REJECT rule names the Service; there is no KUBE-SEP
    text = ('-A KUBE-SERVICES -d 10.233.0.3/32 -p udp -m comment --comment "kube-system/kube-dns:dns has no '
            'endpoints" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable')
    live = parse_iptables_save(text)
    assert live is not None and live.addresses == () and live.services == ("10.233.0.3",)


def test_stale_groups_of_the_lab_rollout():
    (g,) = stale_groups(STALE, FLAG)
    assert g.dead_target == "10.244.0.3" and g.port == 53 and g.services == ("10.233.0.3",)
    # node-cache's TCP connects (SYN_SENT) are attempts, not flows that carry queries
    assert g.protos == ("udp",) and all(e.proto is FlowProto.UDP for e in g.entries)
    assert sorted(e.orig_sport for e in g.entries) == [38373, 40053, 44027, 59339]
    # flows that were not DNATed (a dig to the pod itself, CoreDNS to its upstream) are not judged
    assert not stale_groups(STALE, LiveEndpoints(addresses=("10.244.0.3",), source=EndpointsSource.FLAG))


def test_finding_contract_one_per_dead_target():
    second = parse_proc_line("ipv4 2 udp 17 25 src=10.244.1.10 dst=10.233.0.3 sport=5000 dport=53 "
                             "src=10.244.2.17 dst=10.244.1.10 sport=53 dport=5000 [ASSURED] mark=0 use=1")
    fs = stale_findings(snap(entries=(*STALE, second)), StaleCheck(live=FLAG, how="flag"))
    assert [f.code for f in fs] == ["stale-dns-conntrack"] * 2
    f = fs[0]
    assert f.severity is Severity.CRITICAL and f.verdict is Verdict.DNS_UNAVAILABLE
    data = to_jsonable(f)["data"]
    for key, typ in CONTRACT.items():
        assert isinstance(data[key], typ), key
    assert data["dead_target"] == "10.244.0.3" and data["entries"] == 4 and data["protos"] == ["udp"]
    assert data["source_ports"] == [38373, 40053, 44027, 59339]
    assert len(data["timeouts"]) == 4 and data["ages"] is None and data["owners"] == []
    assert data["live_endpoints"] == ["10.244.0.4"] and data["endpoints_source"] == "flag"
    assert data["services"] == ["10.233.0.3"]
    assert data["remedy_command"] == "conntrack -D -p udp --reply-src 10.244.0.3 --reply-port-src 53"
    assert data["remedy_command"] in f.remedy and "flush" not in data["remedy_command"]
    assert fs[1].data["dead_target"] == "10.244.2.17"


def test_lists_are_bounded_and_sorted():
    lines = [f"ipv4 2 udp 17 {i % 30} src=10.0.0.{i % 200} dst=10.96.0.10 sport={60000 - i} dport=53 "
             f"src=10.244.9.9 dst=10.0.0.1 sport=53 dport={60000 - i} mark=0 use=1 delta-time={i}" for i in range(120)]
    (g,) = stale_groups([parse_proc_line(x) for x in lines], FLAG)
    (f,) = stale_findings(snap(entries=g.entries), StaleCheck(live=FLAG, how="flag"))
    d = f.data
    assert d["entries"] == 120 and len(d["source_ports"]) == 50 and d["source_ports"] == sorted(d["source_ports"])
    assert len(d["timeouts"]) == 50 and len(d["ages"]) == 50


def test_ages_from_the_kernel_timestamps():
    line = ("ipv4 2 udp 17 29 src=10.244.1.10 dst=10.233.0.3 sport=4000 dport=53 src=10.244.0.3 "
            "dst=10.244.1.10 sport=53 dport=4000 mark=0 delta-time=42 use=1")
    assert parse_proc_line(line).age_s == 42
    (g,) = stale_groups([parse_proc_line(line)], FLAG)
    assert g.ages == (42,)
    d = json.loads((DATA / "netlink_entries_lab.json").read_text())[0]
    assert from_netlink_dict({**d, "start_ns": 1_000 * 10**9}, now_ns=1_100 * 10**9 + 5).age_s == 100
    assert from_netlink_dict(d).age_s is None


def test_owners_are_the_local_sockets_of_the_flows():
    socks = (SocketOwner(proto=FlowProto.UDP, local_ip="0.0.0.0", local_port=38373, pid=77, process="node-cache"),
             SocketOwner(proto=FlowProto.UDP, local_ip="192.168.50.1", local_port=59339, pid=77, process="node-cache"),
             SocketOwner(proto=FlowProto.TCP, local_ip="0.0.0.0", local_port=38373, pid=88, process="other"),
             SocketOwner(proto=FlowProto.UDP, local_ip="10.9.9.9", local_port=44027, pid=99, process="elsewhere"))
    (g,) = stale_groups(STALE, FLAG, sockets=socks)
    assert [(o.pid, o.process) for o in g.owners] == [(77, "node-cache")]
    (f,) = stale_findings(snap(entries=STALE), StaleCheck(live=FLAG, how="flag", sockets=socks))
    assert f.data["owners"] == [{"pid": 77, "process": "node-cache"}]
    assert any("node-cache[77]" in e for e in f.evidence)


def test_kube_proxy_rules_that_still_dnat_to_the_dead_target():
    lagging = parse_iptables_save((DATA / "kube-proxy-1.34.4-iptables-nat-lagging.txt").read_text())
    (f,) = stale_findings(snap(entries=STALE), StaleCheck(live=FLAG, how="flag", proxy_rules=lagging))
    assert f.data["kube_proxy_lagging"] is True
    assert f.remedy.startswith("First bring kube-proxy back")
    fresh = parse_iptables_save((DATA / "kube-proxy-1.34.4-iptables-nat.txt").read_text())
    (f,) = stale_findings(snap(entries=STALE), StaleCheck(live=FLAG, how="flag", proxy_rules=fresh))
    assert f.data["kube_proxy_lagging"] is False and f.remedy.startswith("On the node")


def test_kube_proxy_endpoints_judge_only_the_service():
    live = parse_iptables_save((DATA / "kube-proxy-1.34.4-iptables-nat.txt").read_text())
    other = parse_proc_line("ipv4 2 udp 17 25 src=10.244.1.10 dst=10.233.9.9 sport=5000 dport=53 "
                            "src=10.244.2.17 dst=10.244.1.10 sport=53 dport=5000 mark=0 use=1")
    groups = stale_groups((*STALE, other), live)
    assert [g.dead_target for g in groups] == ["10.244.0.3"]
    assert groups[0].live.source is EndpointsSource.IPTABLES


def test_unknown_endpoints_are_a_note_never_a_guess():
    fs = conntrack_findings(snap(entries=STALE), snap(entries=STALE),
                            stale=StaleCheck(live=None, how="live DNS endpoints unknown"))
    assert "stale-dns-conntrack" not in {f.code for f in fs}
    (note,) = [f for f in fs if f.code == "dns-endpoints-unknown"]
    assert note.severity is Severity.INFO and "--dns-endpoints" in note.remedy
    assert derive_verdict(fs) is Verdict.OK


def test_verdict_and_confirmation():
    fs = conntrack_findings(snap(entries=STALE), snap(entries=STALE), stale=StaleCheck(live=FLAG, how="flag"))
    assert derive_verdict(fs) is Verdict.DNS_UNAVAILABLE
    (f,) = [f for f in fs if f.code == "stale-dns-conntrack"]
    assert f.data["confirmed_by"] == ["endpoints", "conntrack"]


def test_remedy_command_is_narrow_and_quoted():
    assert remedy_command("fd00:244::3", 53, "tcp") == \
        "conntrack -D -f ipv6 -p tcp --reply-src fd00:244::3 --reply-port-src 53"
    assert split_flag(["10.0.0.1,10.0.0.2", "10.0.0.1", " ", "10.0.0.3"]) == ("10.0.0.1", "10.0.0.2", "10.0.0.3")


# ---------------------------------------------------------------- the diagnose row

def _stale_finding():
    (f,) = stale_findings(snap(entries=STALE), StaleCheck(live=FLAG, how="flag"))
    return f


def test_diagnose_row_decides_above_the_silent_path_with_high_confidence():
    from toolkit.triage.classify import classify

    from tests.unit.evidence_kit import evidence, failed, result

    res = result(failed("169.254.25.10", "resolv.conf", "udp", "timeout"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "timeout"))
    c = classify(evidence(res, conntrack_findings=(_stale_finding(),)))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.DNS_UNAVAILABLE, "high", "stale_dns_conntrack")
    assert c.findings[0].code == "stale-dns-conntrack"
    assert {"endpoints", "conntrack"} <= set(c.support)


def test_diagnose_row_with_a_healthy_path_still_names_the_stale_flows():
    from toolkit.triage.classify import classify

    from tests.unit.evidence_kit import addr, evidence, result, walked

    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.20"]),
                 walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]))
    c = classify(evidence(res, addr("192.168.50.20", "up"), conntrack_findings=(_stale_finding(),)))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.DNS_UNAVAILABLE, "high", "stale_dns_conntrack")
    # without the finding the same evidence is ok
    assert classify(evidence(res, addr("192.168.50.20", "up"))).verdict is Verdict.OK


def test_stale_check_reads_kube_proxy_rules_beside_the_flag(monkeypatch):
    import toolkit.conntrack.stale as stale_mod

    lagging = (DATA / "kube-proxy-1.34.4-iptables-nat-lagging.txt").read_text()
    monkeypatch.setattr(stale_mod, "_run", lambda cmd, _timeout: lagging if cmd[0] == "iptables-save" else None)
    monkeypatch.setattr(stale_mod, "local_sockets", lambda: ())
    check = stale_mod.stale_check(["10.244.0.4"])
    assert check.live is not None and check.live.source is EndpointsSource.FLAG
    assert check.live.services == ("10.233.0.3",)  # the Service addresses, from kube-proxy's rules
    assert check.proxy_rules is not None and check.proxy_rules.addresses == ("10.244.0.3",)
    nothing = stale_mod.stale_check(())
    assert nothing.live is not None and nothing.live.source is EndpointsSource.IPTABLES
    monkeypatch.setattr(stale_mod, "_run", lambda _cmd, _timeout: None)
    unknown = stale_mod.stale_check(())
    assert unknown.live is None and "unknown" in unknown.how and "iptables-save -t nat: unavailable" in unknown.how


@pytest.mark.parametrize("cmd", [["conntrack"], ["diagnose", "example.com"]])
@pytest.mark.parametrize("value", ["nope", ",", "10.0.0.1:53", "10.0.0.300", "10.0.0.1,x", "$(reboot)"])
def test_dns_endpoints_flag_rejects_what_is_not_an_address(cmd, value):
    import subprocess
    import sys

    # every value is refused before anything runs (nothing is observed in the host's namespace)
    p = subprocess.run([sys.executable, "-m", "toolkit", *cmd, "--dns-endpoints", value, "--deadline", "1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--dns-endpoints" in p.stderr and "Traceback" not in p.stderr
