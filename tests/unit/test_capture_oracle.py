"""tshark is the oracle: podtriage's counts and per-pair latencies match tshark's
dns.response_to / dns.time / dns.retransmission on pcaps with known traffic.

tshark must be installed (apt-get install tshark): these tests fail, never skip, without it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.decode import Decoder
from toolkit.capture.dnswire import rcode_name
from toolkit.capture.pcapio import PcapReader, write_pcap
from toolkit.capture.records import IcmpSeen, Pair, Retransmission, Unanswered
from toolkit.capture.session import analyze_file

C4, S4 = "10.244.1.10", "169.254.25.10"
C6, S6 = "fd00:244::10", "fd00:53::53"
T0 = 1_700_000_000_000_000_000


def tshark_rows(pcap: Path) -> list[dict]:
    exe = shutil.which("tshark")
    assert exe, "tshark is the test oracle and must be installed (apt-get install tshark)"
    fields = ["frame.number", "dns.id", "dns.flags.response", "dns.time", "dns.response_to", "dns.response_in",
              "dns.retransmission", "dns.flags.rcode", "dns.flags.truncated", "icmp.type", "icmpv6.type",
              "dns.resp.ext_rcode"]
    cmd = [exe, "-2", "-r", str(pcap), "-Y", "dns", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rows = []
    for line in p.stdout.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(fields) - len(cols))
        # a TCP segment may carry several DNS messages: one row per message
        per = [c.split(",") if c else [] for c in cols]
        n = max(1, len(per[1]))
        for i in range(n):
            rows.append({f: (per[j][i] if i < len(per[j]) else (per[j][0] if len(per[j]) == 1 and j == 0 else ""))
                         for j, f in enumerate(fields)})
    # DNS quoted inside an ICMP error is evidence about a query, not a message of its own
    return [r for r in rows if not r["icmp.type"] and not r["icmpv6.type"]]


class Capture:
    def __init__(self) -> None:
        self.t = T0
        self.frames: list[tuple[int, bytes]] = []

    def add(self, dt_ms: float, ip: bytes, linktype: int = 1, **kw) -> None:
        self.t += int(dt_ms * 1_000_000)
        self.frames.append((self.t, S.frame(ip, linktype, **kw)))

    def write(self, path: Path, linktype: int = 1) -> Path:
        write_pcap(str(path), linktype, self.frames)
        return path


def analyze(path: Path, **cfg):
    events = []
    res = analyze_file(str(path), config=AnalyzerConfig(**cfg), sink=events.append)
    return res, events


def check_against_tshark(path: Path, res, events) -> list[dict]:
    rows = tshark_rows(path)
    queries = [r for r in rows if r["dns.flags.response"] in ("0", "False")]
    responses = [r for r in rows if r["dns.flags.response"] in ("1", "True")]
    s = res.summary
    assert s.queries == len(queries)
    assert s.responses == len(responses)
    retrans = [r for r in queries if r["dns.retransmission"] in ("1", "True")]
    assert s.retransmissions == len(retrans)
    # tshark: a query (not itself a retransmission) without dns.response_in is unanswered
    unanswered = [r for r in queries if not r["dns.response_in"] and r not in retrans]
    assert s.unanswered == len(unanswered)
    ts_pairs = Counter((int(r["dns.id"], 16), round(float(r["dns.time"]) * 1e6))
                       for r in responses if r["dns.time"])
    ours = Counter((p.txid, round(p.latency_ms * 1000)) for p in events if isinstance(p, Pair))
    # float time stamps: allow 1 us of rounding per pair
    assert sum(ours.values()) == sum(ts_pairs.values())
    for (txid, us), n in ours.items():
        near = sum(ts_pairs.get((txid, us + d), 0) for d in (-1, 0, 1))
        assert near >= n, f"pair txid {txid} latency {us} us not in tshark's {sorted(ts_pairs)}"
    # the extended rcode: the OPT record's upper 8 bits over the header's 4 (RFC 6891 6.1.3)
    rc = Counter((int(r["dns.resp.ext_rcode"] or "0", 0) << 4) | int(r["dns.flags.rcode"]) for r in responses)
    assert s.rcodes == {rcode_name(k): v for k, v in rc.items()}
    return rows


def q4(txid, name, qtype=1, port=40000, client=C4, server=S4):
    return S.udp(client, server, port, 53, S.dns_query(txid, name, qtype))


def r4(txid, name, qtype=1, port=40000, client=C4, server=S4, **kw):
    return S.udp(server, client, 53, port, S.dns_response(txid, name, qtype, **kw))


SEARCH = ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s")


def glibc_walk(cap: Capture, base: str, port: int = 40000, first_txid: int = 100, linktype: int = 1,
               client=C4, server=S4, **kw) -> None:
    """What glibc sends for getent ahosts BASE with ndots:5 and three search domains."""
    txid = first_txid
    for i, cand in enumerate([f"{base}.{d}" for d in SEARCH] + [base]):
        last = i == len(SEARCH)
        cap.add(1, q4(txid, cand, 1, port, client, server), linktype, **kw)
        cap.add(0.05, q4(txid + 1, cand, 28, port, client, server), linktype, **kw)
        if last:
            cap.add(0.8, r4(txid, cand, 1, port, client, server, addresses=("192.168.50.20",)), linktype, **kw)
            cap.add(0.1, r4(txid + 1, cand, 28, port, client, server), linktype, **kw)
        else:
            cap.add(0.8, r4(txid, cand, 1, port, client, server, rcode=3), linktype, **kw)
            cap.add(0.1, r4(txid + 1, cand, 28, port, client, server, rcode=3), linktype, **kw)
        txid += 2


def test_udp_search_chain_is_one_lookup(tmp_path):
    cap = Capture()
    glibc_walk(cap, "api.corp.example")
    path = cap.write(tmp_path / "walk.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    s = res.summary
    assert s.lookups_total == 1
    lk = s.lookups[0]
    assert lk.base == "api.corp.example"
    assert lk.amplification == 8
    assert lk.nxdomain == 6
    assert lk.outcome == "answered" and lk.addresses == ("192.168.50.20",)
    assert lk.answered_name == "api.corp.example"


def test_search_list_known_groups_exactly(tmp_path):
    cap = Capture()
    glibc_walk(cap, "api.corp.example")
    glibc_walk(cap, "api.other.example", first_txid=300)
    path = cap.write(tmp_path / "two.pcap")
    _res, events = analyze(path, search=SEARCH)
    lookups = [e for e in events if type(e).__name__ == "Lookup"]
    assert [lk.base for lk in lookups] == ["api.corp.example", "api.other.example"]
    assert all(lk.amplification == 8 for lk in lookups)


@pytest.mark.parametrize("linktype,kw", [
    (1, {}), (1, {"vlans": (100,)}), (1, {"vlans": (10, 20)}), (113, {}), (276, {}), (101, {}),
    (228, {}),
])
def test_link_types(tmp_path, linktype, kw):
    cap = Capture()
    glibc_walk(cap, "api.corp.example", linktype=linktype, **kw)
    path = cap.write(tmp_path / f"lt{linktype}.pcap", linktype)
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    assert res.summary.pairs == 8 and res.summary.lookups_total == 1


def test_ipv6(tmp_path):
    cap = Capture()
    glibc_walk(cap, "api.corp.example", client=C6, server=S6)
    path = cap.write(tmp_path / "v6.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    assert res.summary.servers[0].server == S6
    assert res.summary.pairs == 8


def test_ipv6_raw_linktype_229(tmp_path):
    cap = Capture()
    glibc_walk(cap, "api.corp.example", client=C6, server=S6, linktype=229)
    path = cap.write(tmp_path / "v6raw.pcap", 229)
    res, events = analyze(path)
    check_against_tshark(path, res, events)


def test_tcp_split_and_pipelined(tmp_path):
    cap = Capture()
    c, s, cp = C4, S4, 45000
    q1 = S.dns_query(0x1111, "big.corp.example", 1)
    q2 = S.dns_query(0x2222, "big.corp.example", 28)
    r1 = S.dns_response(0x1111, "big.corp.example", 1, addresses=tuple(f"10.0.0.{i}" for i in range(1, 40)))
    r2 = S.dns_response(0x2222, "big.corp.example", 28, addresses=("fd00::1",))
    w1 = len(q1).to_bytes(2, "big") + q1
    w2 = len(q2).to_bytes(2, "big") + q2
    cseq, sseq = 1000, 5000
    cap.add(1, S.tcp(c, s, cp, 53, cseq, 0, "S"))
    cap.add(0.1, S.tcp(s, c, 53, cp, sseq, cseq + 1, "SA"))
    cap.add(0.1, S.tcp(c, s, cp, 53, cseq + 1, sseq + 1, "A"))
    cseq += 1
    sseq += 1
    # query 1 split in the middle of its length prefix and again inside the message
    parts = [w1[:1], w1[1:10], w1[10:]]
    for part in parts:
        cap.add(0.2, S.tcp(c, s, cp, 53, cseq, sseq, "PA", part))
        cseq += len(part)
    cap.add(0.2, S.tcp(c, s, cp, 53, cseq, sseq, "PA", w2))
    cseq += len(w2)
    # both responses in one segment
    both = len(r1).to_bytes(2, "big") + r1 + len(r2).to_bytes(2, "big") + r2
    cap.add(2.0, S.tcp(s, c, 53, cp, sseq, cseq, "PA", both))
    sseq += len(both)
    cap.add(0.1, S.tcp(c, s, cp, 53, cseq, sseq, "FA"))
    path = cap.write(tmp_path / "tcp.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    pairs = [e for e in events if isinstance(e, Pair)]
    assert {(p.txid, p.transport) for p in pairs} == {(0x1111, "tcp"), (0x2222, "tcp")}
    a = next(p for p in pairs if p.txid == 0x1111)
    assert len(a.addresses) == 32  # capped
    assert res.summary.malformed == 0


def test_retransmission_unanswered_and_late(tmp_path):
    cap = Capture()
    cap.add(0, q4(1, "a.example"))
    cap.add(1000, q4(1, "a.example"))  # retransmission within the timeout
    cap.add(10, r4(1, "a.example", addresses=("10.1.1.1",)))
    cap.add(10, q4(7, "lost.example", port=40001))  # never answered
    cap.add(10, q4(8, "slow.example", port=40002))
    cap.add(7000, r4(8, "slow.example", port=40002, addresses=("10.1.1.2",)))  # after the timeout
    path = cap.write(tmp_path / "rt.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    s = res.summary
    assert s.retransmissions == 1 and s.unanswered == 1 and s.late_responses == 1
    assert [e.attempt for e in events if isinstance(e, Retransmission)] == [2]
    un = [e for e in events if isinstance(e, Unanswered)]
    assert un[0].qname == "lost.example" and un[0].reason == "timeout"


def test_tc_then_tcp_retry(tmp_path):
    cap = Capture()
    cap.add(0, q4(9, "tc.example", port=40010))
    cap.add(1, r4(9, "tc.example", port=40010, tc=True))
    cap.add(1, S.tcp(C4, S4, 45010, 53, 1, 0, "S"))
    cap.add(0.1, S.tcp(S4, C4, 53, 45010, 1, 2, "SA"))
    q = S.dns_query(10, "tc.example", 1)
    cap.add(0.1, S.tcp(C4, S4, 45010, 53, 2, 2, "PA", len(q).to_bytes(2, "big") + q))
    r = S.dns_response(10, "tc.example", 1, addresses=("10.9.9.9",))
    cap.add(1, S.tcp(S4, C4, 53, 45010, 2, 2 + 2 + len(q), "PA", len(r).to_bytes(2, "big") + r))
    cap.add(0, q4(11, "tc2.example", port=40011))
    cap.add(1, r4(11, "tc2.example", port=40011, tc=True))  # never retried
    path = cap.write(tmp_path / "tc.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    s = res.summary
    assert s.tc_responses == 2 and s.tc_followed_by_tcp == 1 and s.tc_not_followed == 1


def test_icmp_port_unreachable_quoting_a_query(tmp_path):
    cap = Capture()
    query = q4(21, "x.example", port=40021)
    cap.add(0, query)
    cap.add(0.2, S.icmp_error(S4, C4, query))
    q6 = S.udp(C6, S6, 40022, 53, S.dns_query(22, "y.example", 28))
    cap.add(1, q6)
    cap.add(0.2, S.icmp_error(S6, C6, q6))
    path = cap.write(tmp_path / "icmp.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    seen = [e for e in events if isinstance(e, IcmpSeen)]
    assert [(e.kind, e.sender, e.txid, e.qname, e.matched) for e in seen] == [
        ("port-unreachable", S4, 21, "x.example", True), ("port-unreachable", S6, 22, "y.example", True)]
    un = [e for e in events if isinstance(e, Unanswered)]
    assert {(u.qname, u.icmp, u.icmp_from) for u in un} == {("x.example", "port-unreachable", S4),
                                                            ("y.example", "port-unreachable", S6)}
    srv = {v.server: v for v in res.summary.servers}
    assert srv[S4].icmp == {"port-unreachable": 1}


def test_five_second_signature(tmp_path):
    cap = Capture()
    name = "api.corp.example"
    for i in range(3):
        port = 41000 + i
        cap.add(100, q4(500 + 2 * i, name, 1, port))
        cap.add(0.05, q4(501 + 2 * i, name, 28, port))  # same socket, within 1 ms
        cap.add(0.8, r4(500 + 2 * i, name, 1, port, addresses=("192.168.50.20",)))
        # the AAAA answer never comes; glibc resends after its 5 s timeout
        cap.add(5000, q4(500 + 2 * i, name, 1, port))
        cap.add(0.7, r4(500 + 2 * i, name, 1, port, addresses=("192.168.50.20",)))
        cap.add(0.1, q4(501 + 2 * i, name, 28, port))
        cap.add(0.7, r4(501 + 2 * i, name, 28, port))
    path = cap.write(tmp_path / "sig.pcap")
    res, events = analyze(path)
    check_against_tshark(path, res, events)
    s = res.summary
    assert s.signature_hits == 3
    assert s.signature_lost_types == {"AAAA": 3}
    from toolkit.capture.report import capture_report
    from toolkit.model import Verdict

    rep = capture_report(res)
    assert rep.verdict is Verdict.CONNTRACK
    f = next(f for f in rep.findings if f.code == "capture-5s-signature")
    assert "single-request-reopen" in f.remedy and "musl" in f.remedy
    # the lost AAAA queries are explained by the signature, not blamed on the server
    assert not [f for f in rep.findings if f.code == "capture-unanswered"]


def test_stopped_server_is_dns_unavailable(tmp_path):
    cap = Capture()
    for i in range(4):
        q = q4(600 + i, f"n{i}.example", 1, 42000 + i)
        cap.add(100, q)
        cap.add(0.1, S.icmp_error(S4, C4, q))
    cap.add(6000, q4(700, "late.example"))  # keeps the capture going past the timeout
    path = cap.write(tmp_path / "down.pcap")
    res, _events = analyze(path)
    from toolkit.capture.report import capture_report
    from toolkit.model import Verdict

    rep = capture_report(res)
    assert rep.verdict is Verdict.DNS_UNAVAILABLE
    f = next(f for f in rep.findings if f.code == "capture-unanswered")
    assert S4 in f.summary and "port-unreachable" in f.summary
    assert f.data["icmp"] == {"port-unreachable": 4}


def test_pcapng_and_nanosecond_via_editcap(tmp_path):
    cap = Capture()
    glibc_walk(cap, "api.corp.example")
    path = cap.write(tmp_path / "walk.pcap")
    editcap = shutil.which("editcap")
    assert editcap, "editcap (tshark's package) must be installed"
    ng = tmp_path / "walk.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(path), str(ng)], check=True, timeout=30)
    us = tmp_path / "walk-us.pcap"
    subprocess.run([editcap, "-F", "pcap", str(path), str(us)], check=True, timeout=30)
    base, base_events = analyze(path)
    for other in (ng, us):
        res, events = analyze(other)
        assert res.file_format == ("pcapng" if other.suffix == ".pcapng" else "pcap")
        check_against_tshark(other, res, events)
        assert res.summary.pairs == base.summary.pairs == 8


def test_reader_counts_a_truncated_last_record(tmp_path):
    cap = Capture()
    glibc_walk(cap, "api.corp.example")
    path = cap.write(tmp_path / "walk.pcap")
    data = path.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-7])
    r = PcapReader(str(cut))
    n = sum(1 for _ in r)
    assert n == 15 and r.malformed == 1 and "truncated" in r.malformed_reasons[0]
    res, _ = analyze(cut)
    assert res.summary.malformed == 1


def test_decoder_counts_garbage_on_port_53():
    d = Decoder()
    evs = d.decode(T0, 101, S.udp(C4, S4, 40000, 53, b"\x01\x02\x03"))
    assert len(evs) == 1 and type(evs[0]).__name__ == "Malformed" and "short DNS header" in evs[0].reason
    assert d.decode(T0, 101, S.udp(C4, S4, 40000, 80, b"GET /")) == ()


def test_dns_on_an_extra_port(tmp_path):
    cap = Capture()
    cap.add(0, S.udp(C4, S4, 40000, 5353, S.dns_query(1, "x.local", 1)))
    cap.add(1, S.udp(S4, C4, 5353, 40000, S.dns_response(1, "x.local", 1, addresses=("10.0.0.5",))))
    path = cap.write(tmp_path / "mdns.pcap")
    assert analyze_file(str(path)).summary.pairs == 0
    assert analyze_file(str(path), ports=(53, 5353)).summary.pairs == 1


def test_memory_bounded_pending_and_lookups():
    cfg = AnalyzerConfig(max_pending=100, keep_lookups=10, keep_evidence=5)
    a = Analyzer(cfg)
    d = Decoder()
    t = T0
    for i in range(5000):
        t += 1_000_000
        for ev in d.decode(t, 101, q4(i & 0xFFFF, f"h{i}.example", 1, 30000 + (i % 20000))):
            a.feed(ev)
    assert len(a.pending) <= 100
    a.finish()
    s = a.summary()
    assert s.unanswered == 5000 and len(s.lookups) == 10 and len(s.unanswered_examples) == 5
    assert s.evicted_pending > 0
