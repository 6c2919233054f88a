"""Capture analysis of DNS over IPv6 transports, tshark as the oracle (as in
test_capture_oracle.py): the 5-second signature, pairing, retransmissions and unanswered
queries when the pod talks to an IPv6 nameserver (NodeLocal on fd00:25::10)."""

from __future__ import annotations

from toolkit.capture import synth as S
from toolkit.capture.records import Retransmission, Unanswered

from tests.unit.test_capture_oracle import Capture, analyze, check_against_tshark

C6, NL6 = "fd00:244:1::10", "fd00:25::10"


def q6(txid, name, qtype=1, port=40000):
    return S.udp(C6, NL6, port, 53, S.dns_query(txid, name, qtype))


def r6(txid, name, qtype=1, port=40000, **kw):
    return S.udp(NL6, C6, 53, port, S.dns_response(txid, name, qtype, **kw))


def test_five_second_signature_over_ipv6(tmp_path):
    cap = Capture()
    name = "app6.example.org"
    for i in range(3):
        port = 41000 + i
        cap.add(100, q6(500 + 2 * i, name, 1, port))
        cap.add(0.05, q6(501 + 2 * i, name, 28, port))  # A and AAAA from one socket, < 1 ms
        cap.add(0.8, r6(500 + 2 * i, name, 1, port, addresses=("192.168.50.20",)))
        # the AAAA answer never comes; glibc resends both after its 5 s timeout
        cap.add(5000, q6(500 + 2 * i, name, 1, port))
        cap.add(0.7, r6(500 + 2 * i, name, 1, port, addresses=("192.168.50.20",)))
        cap.add(0.1, q6(501 + 2 * i, name, 28, port))
        cap.add(0.7, r6(501 + 2 * i, name, 28, port, addresses=("fd00:50::20",)))
    path = cap.write(tmp_path / "sig6.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    s = res.summary
    assert s.signature_hits == 3 and s.signature_lost_types == {"AAAA": 3}
    assert s.servers[0].server == NL6
    from toolkit.capture.report import capture_report
    from toolkit.model import Verdict

    rep = capture_report(res)
    assert rep.verdict is Verdict.CONNTRACK
    assert any(f.code == "capture-5s-signature" for f in rep.findings)


def test_retransmission_unanswered_and_late_over_ipv6(tmp_path):
    cap = Capture()
    cap.add(0, q6(1, "a.example", 28))
    cap.add(1000, q6(1, "a.example", 28))  # retransmission within the timeout
    cap.add(10, r6(1, "a.example", 28, addresses=("fd00::1",)))
    cap.add(10, q6(7, "lost.example", 28, port=40001))  # never answered
    cap.add(10, q6(8, "slow.example", 28, port=40002))
    cap.add(7000, r6(8, "slow.example", 28, port=40002, addresses=("fd00::2",)))  # after the timeout
    path = cap.write(tmp_path / "rt6.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    s = res.summary
    assert s.retransmissions == 1 and s.unanswered == 1 and s.late_responses == 1 and s.pairs >= 1
    assert [e.attempt for e in events if isinstance(e, Retransmission)] == [2]
    un = [e for e in events if isinstance(e, Unanswered)]
    assert un[0].qname == "lost.example" and un[0].reason == "timeout"


def test_icmpv6_port_unreachable_from_a_stopped_ipv6_nameserver(tmp_path):
    cap = Capture()
    for i in range(4):
        q = q6(600 + i, f"n{i}.example", 28, 42000 + i)
        cap.add(100, q)
        cap.add(0.1, S.icmp_error(NL6, C6, q))
    cap.add(6000, q6(700, "late.example"))  # keeps the capture going past the timeout
    path = cap.write(tmp_path / "down6.pcap")
    res, events = analyze(path)
    un = [e for e in events if isinstance(e, Unanswered) and e.qname != "late.example"]
    assert len(un) == 4 and {(u.icmp, u.icmp_from) for u in un} == {("port-unreachable", NL6)}
    assert {v.server: v for v in res.summary.servers}[NL6].icmp == {"port-unreachable": 4}
    from toolkit.capture.report import capture_report
    from toolkit.model import Verdict

    assert capture_report(res).verdict is Verdict.DNS_UNAVAILABLE
