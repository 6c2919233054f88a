"""Link layers that wrap IP in metadata (toolkit/capture/linklayer.py): NFLOG (tcpdump's
nflog.pcap and one written by `tcpdump -i nflog:5` in a lab namespace), PKTAP (tcpdump's
LINKTYPE_PKTAP / LINKTYPE_USER2_PKTAP), PPP and HDLC (no public trace holds DNS in them:
built here around the IP packets of a public trace); each checked against tshark -2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_capture_oracle import analyze, check_against_tshark
from toolkit.capture.decode import Decoder
from toolkit.capture.linklayer import nflog, peel, pktap
from toolkit.capture.pcapio import PcapReader, write_pcap
from toolkit.capture.session import analyze_file

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"


@pytest.mark.parametrize("name, linktype, counts", [
    ("tcpdump-LINKTYPE_PKTAP.pcap", "pktap", (1, 0)),  # linktype 258
    ("tcpdump-LINKTYPE_USER2_PKTAP.pcap", "pktap", (1, 0)),  # 149, as libpcap on macOS writes it
    ("tcpdump-nflog.pcap", "nflog", (0, 4)),  # answers only
    ("lab-nflog-dns-prefix.pcap", "nflog", (6, 3)),  # IPv4 and IPv6 (NFLOG family 10)
])
def test_wrapped_link_types_match_tshark(name, linktype, counts):
    path = PCAPS / name
    res, events = analyze(path)
    assert res.linktypes == (linktype,)
    assert (res.summary.queries, res.summary.responses) == counts
    assert res.decoder["unsupported_linktype"] == 0 and res.decoder["not_ip"] == 0
    check_against_tshark(path, res, events)


def test_nflog_prefix_names_the_rule_that_saw_the_packets():
    """The lab trace: `iptables -j NFLOG --nflog-group 5 --nflog-prefix dns-drop` before a
    DROP of queries to 127.0.0.2 / ::2, and 'dns-query' / 'dns-answer' rules for a
    dnsmasq that answers (tests/data/pcaps/README.md has the commands)."""
    res = analyze_file(str(PCAPS / "lab-nflog-dns-prefix.pcap"))
    notes = "\n".join(res.notes)
    assert "seen by NFLOG group 5, prefix 'dns-drop', socket uid 0: 3 queries, 0 responses" in notes
    assert "seen by NFLOG group 5, prefix 'dns-answer': 0 queries, 3 responses" in notes
    assert "NFLOG frames are timed when the capturing program read them" in notes
    assert res.summary.rcodes == {"NOERROR": 2, "REFUSED": 1}


def test_nflog_tlvs_of_tcpdumps_trace():
    """tcpdump's nflog.pcap: group 20 (tcpdump -e: 'resource ID 20'), an empty prefix."""
    with PcapReader(str(PCAPS / "tcpdump-nflog.pcap")) as r:
        _, lt, data = next(iter(r))
    got = nflog(data)
    assert not isinstance(got, str)
    assert lt == 239 and got.et == 0x0800 and got.origin == "NFLOG group 20"  # no uid: answers arriving
    assert data[got.off] >> 4 == 4


def test_pktap_inner_frame_is_ethernet():
    """tcpdump -e on LINKTYPE_PKTAP.pcap: 'DLT EN10MB (1) len 108'."""
    with PcapReader(str(PCAPS / "tcpdump-LINKTYPE_PKTAP.pcap")) as r:
        _, _, data = next(iter(r))
    got = pktap(data)
    assert not isinstance(got, str)
    assert (got.inner, got.off, got.origin) == (1, 108, "PKTAP en0")


def _ip_packets(name: str) -> list[tuple[int, bytes]]:
    """The IP packets (Ethernet header removed) of a public Ethernet trace."""
    with PcapReader(str(PCAPS / name)) as r:
        return [(ts, data[14:]) for ts, lt, data in r if lt == 1 and data[12:14] == b"\x08\x00"]


@pytest.mark.parametrize("linktype, header", [
    (9, b"\xff\x03\x00\x21"),  # PPP with RFC 1662 address/control
    (9, b"\x00\x21"),  # PPP without them (address/control field compression)
    (9, b"\x21"),  # protocol field compression (RFC 1661 6.5)
    (50, b"\xff\x03\x00\x21"),  # PPP in HDLC-like framing
    (50, b"\x0f\x00\x08\x00"),  # Cisco PPP with HDLC framing: an ethertype
    (104, b"\x0f\x00\x08\x00"),  # Cisco HDLC
])
def test_ppp_and_hdlc_match_tshark(tmp_path, linktype, header):
    """No public capture holds DNS over PPP or HDLC (tcpdump's ppp_ip_udp_dns.pcap is a
    damaged fuzz case; Linux's libpcap writes PPP interfaces as Linux cooked or raw IP): the
    frames are the IP packets of tcpdump's dns-badvers.pcap behind each header."""
    path = tmp_path / "ppp.pcap"
    write_pcap(str(path), linktype, [(ts, header + ip) for ts, ip in _ip_packets("tcpdump-dns-badvers.pcap")])
    res, events = analyze(path)
    assert (res.summary.queries, res.summary.responses, res.summary.pairs) == (2, 2, 2)
    assert res.summary.rcodes == {"BADVERS": 1, "NOERROR": 1}
    check_against_tshark(path, res, events)


def test_ppp_control_protocols_are_not_ip():
    d = Decoder()
    assert d.decode(0, 9, b"\xff\x03\xc0\x21\x01\x01\x00\x04") == ()  # LCP
    assert d.not_ip == 1 and d.malformed == 0


@pytest.mark.parametrize("linktype", [9, 50, 104, 149, 239, 258])
def test_damaged_headers_never_raise(linktype):
    """Every prefix of a real frame, and garbage: counted, never an exception."""
    frame = b"\x02\x00\x00\x05" + b"\x08\x00\x01\x00" * 3 + bytes(range(256)) * 2
    d = Decoder()
    for n in range(0, 140):
        d.decode(0, linktype, frame[:n])
        d.decode(0, linktype, bytes([0xFF]) * n)
    assert d.frames == 280
    for n in (0, 3, 7, 50, 120):
        peel(linktype, b"\x00" * n)  # returns a reason or a Peeled; raises nothing


@pytest.mark.parametrize("name, rcode", [
    ("tcpdump-dns-badcookie.pcap", "BADCOOKIE"),  # 23: header 7, OPT upper bits 1
    ("tcpdump-dns-badvers.pcap", "BADVERS"),  # 16: header 0, OPT upper bits 1
])
def test_extended_rcodes_on_public_traces(name, rcode):
    path = PCAPS / name
    res, events = analyze(path)
    assert res.summary.rcodes == {rcode: 1, "NOERROR": 1}
    check_against_tshark(path, res, events)
