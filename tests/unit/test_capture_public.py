"""Captures nobody here wrote (Zeek's and nDPI's test traces, tests/data/pcaps/README.md):
`capture --read` must count and pair what tshark -2 counts and pairs, through VXLAN, Geneve,
GRE, GRE-in-UDP, PPTP, QinQ + PPPoE; and its findings must fit what the trace shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_capture_oracle import analyze, check_against_tshark, tshark_rows
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.report import capture_report
from toolkit.capture.session import analyze_file

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"


@pytest.mark.parametrize("name, tunnel", [
    ("zeek-vxlan-triple-v2.pcap", {"tunnel_vxlan": 3}),
    ("zeek-gre-over-udp-4754.pcap", {"tunnel_gre-in-udp": 4}),
    ("zeek-gre-pptp.pcap", {"tunnel_gre": 2}),
    ("zeek-gre-sample.pcap", {"tunnel_gre": 4}),
    ("ndpi-qinq-pppoe-dns.pcap", {}),
    ("zeek-ipv6-fragmented-dns.pcap", {}),
    ("zeek-dns-edns-ecs.pcap", {}),
])
def test_counts_and_pairs_match_tshark(name, tunnel):
    path = PCAPS / name
    res, events = analyze(path)
    assert res.summary.dns_messages > 0, res.decoder
    check_against_tshark(path, res, events)
    for k, v in tunnel.items():
        assert res.decoder.get(k, 0) >= v, res.decoder


def test_truncated_tunnel_answer_still_pairs():
    """Zeek's geneve-vxlan-dns-truncated: DNS in VXLAN in Geneve; the answer's frame is cut
    short (snaplen 176 of 202 bytes) after the question. tshark counts both messages but leaves
    them unpaired; we pair them (same ID, addresses and ports), which is what happened."""
    path = PCAPS / "zeek-geneve-vxlan-dns-truncated.pcap"
    res, events = analyze(path)
    s = res.summary
    rows = tshark_rows(path)
    assert [r["dns.flags.response"] in ("1", "True") for r in rows] == [False, True]
    assert (s.queries, s.responses, s.pairs, s.unanswered) == (1, 1, 1, 0)
    assert res.decoder["tunnel_geneve"] == 2 and res.decoder["tunnel_vxlan"] == 2


def test_qinq_pppoe_frames_are_decoded():
    """nDPI's dns.pcap: two of its five frames are DNS behind 802.1ad + 802.1Q + PPPoE."""
    res = analyze_file(str(PCAPS / "ndpi-qinq-pppoe-dns.pcap"))
    assert res.summary.dns_messages == 5 and res.decoder["not_ip"] == 0


def test_tcp_answer_after_truncation_counts_as_followed():
    """Zeek's dns-edns-ecs: a resolver's capture with the TCP answers to its truncated UDP
    answers (the TCP queries themselves were not captured): no tc-not-followed finding."""
    res = analyze_file(str(PCAPS / "zeek-dns-edns-ecs.pcap"))
    s = res.summary
    assert s.tc_responses == 7 and s.tc_followed_by_tcp == 7 and s.tc_not_followed == 0
    assert "capture-tc-not-followed" not in {f.code for f in capture_report(res).findings}


def test_mdns_is_never_dns_unavailable():
    """mDNS asks a multicast group (RFC 6762): unpaired queries are normal, not a dead server."""
    res = analyze_file(str(PCAPS / "zeek-mdns.pcap"), ports=(53, 5353))
    assert res.summary.queries > 0
    rep = capture_report(res)
    assert not [f for f in rep.findings if f.code == "capture-unanswered"], rep.findings
    assert rep.verdict.value != "dns-unavailable"


def test_ipv6_servers_print_in_brackets():
    """Zeek's ipv6-fragmented-dns: the second question is resent after 5 s on its socket and
    answered 83 ms later: one late answer (not a lost one), the server in brackets."""
    res = analyze_file(str(PCAPS / "zeek-ipv6-fragmented-dns.pcap"),
                       config=AnalyzerConfig())
    rep = capture_report(res)
    assert not [f for f in rep.findings if f.code == "capture-unanswered"]
    f = next(f for f in rep.findings if f.code == "capture-late-answers")
    assert "[2607:f740:b::f93]:53 " in f.evidence[0]
    servers = next(t for t in rep.tables if t.title == "DNS servers")
    assert servers.rows[0][0] == "[2607:f740:b::f93]:53"


def test_llmnr_multicast_is_never_dns_unavailable(tmp_path):
    """LLMNR (RFC 4795) asks 224.0.0.252 / ff02::1:3 on port 5355; answers, if any, come
    unicast from the name's owner. `capture -p 5355` must not call that a dead server."""
    from tests.unit.test_capture_oracle import Capture
    from toolkit.capture import synth as S

    cap = Capture()
    for i, (src, dst) in enumerate([("10.0.0.5", "224.0.0.252"), ("fe80::5", "ff02::1:3")] * 3):
        cap.add(100, S.udp(src, dst, 50000 + i, 5355, S.dns_query(i + 1, "printer", 1, rd=False)))
    path = cap.write(tmp_path / "llmnr.pcap")
    res = analyze_file(str(path), ports=(53, 5355))
    assert res.summary.queries == 6
    rep = capture_report(res)
    assert not [f for f in rep.findings if f.code == "capture-unanswered"], rep.findings
    assert rep.verdict.value != "dns-unavailable"
