"""IPv6 probes, pure parts: packets (RFC 8200 8.1 checksum, RFC 4861 ND), the ICMPv6
table (RFC 4443 3.1) and the address state derived from IPv6 probes."""
import ipaddress
import socket
import struct

import pytest

from toolkit.probe import packets
from toolkit.probe.model import (AddressReport, AddressState, ProbeKind, ProbeOutcome, ProbeResult,
                                 derive_state, result_from_icmp)
from toolkit.probe.run import lost_without_raw
from toolkit.probe.tcp import _match_icmp_msg, _match_segment
from toolkit.sysinfo.routes import Route

SRC, DST = "fd00:244:1::10", "fd00:50::20"


def test_tcp_syn6_checksum_verifies_over_the_ipv6_pseudo_header():
    seg = packets.tcp_syn6(SRC, DST, 40000, 80, 0x01020304)
    pseudo = (socket.inet_pton(socket.AF_INET6, SRC) + socket.inet_pton(socket.AF_INET6, DST)
              + struct.pack("!I3xB", len(seg), 6))
    assert packets.checksum(pseudo + seg) == 0  # a correct checksum sums to 0xffff -> ~ = 0
    sport, dport, seq, _ack, off, flags = struct.unpack_from("!HHIIBB", seg)
    assert (sport, dport, seq, off >> 4, flags) == (40000, 80, 0x01020304, 6, packets.TCP_SYN)
    # the IPv4 pseudo-header would give another checksum: the two are not interchangeable
    assert seg != packets.tcp_syn("10.244.1.10", "192.168.50.20", 40000, 80, 0x01020304)


@pytest.mark.parametrize("addr,group", [("fd00:50::77", "ff02::1:ff00:77"),
                                        ("fe80::1234:5678:9abc", "ff02::1:ff78:9abc")])
def test_solicited_node_group(addr, group):
    assert packets.solicited_node(addr) == group


def test_neighbor_solicit_and_advert():
    ns = packets.neighbor_solicit("fd00:50::77", bytes.fromhex("020000000001"))
    assert ns[0] == 135 and ipaddress.IPv6Address(ns[8:24]) == ipaddress.IPv6Address("fd00:50::77")
    assert ns[24:26] == b"\x01\x01" and ns[26:32] == bytes.fromhex("020000000001")
    na = (struct.pack("!BBHI", 136, 0, 0, 0x60000000) + socket.inet_pton(socket.AF_INET6, DST)
          + b"\x02\x01" + bytes.fromhex("6affa0b0c0d0"))
    got = packets.parse_neighbor_advert(na)
    assert got.target == DST and got.lladdr == "6a:ff:a0:b0:c0:d0" and got.solicited
    assert packets.parse_neighbor_advert(ns) is None  # a solicitation is no answer
    assert packets.parse_neighbor_advert(na[:20]) is None


@pytest.mark.parametrize("code,tcp,result", [
    (0, True, ProbeOutcome.NET_UNREACHABLE),     # no route to destination
    (1, True, ProbeOutcome.ADMIN_PROHIBITED),    # administratively prohibited
    (3, True, ProbeOutcome.HOST_UNREACHABLE),    # address unreachable: the router's ND failed
    (4, True, ProbeOutcome.CLOSED),              # port unreachable: the host is up
    (4, False, ProbeOutcome.ERROR),              # ... but says nothing about an echo
    (5, True, ProbeOutcome.ADMIN_PROHIBITED),    # source address failed ingress/egress policy
    (6, True, ProbeOutcome.ADMIN_PROHIBITED),    # reject route to destination
])
def test_icmpv6_destination_unreachable_table(code, tcp, result):
    assert result_from_icmp(1, code, tcp=tcp, v6=True) is result


def _icmp6_error(code, sport=40000, dport=80, dst=DST):
    inner = (struct.pack("!IHBB", 0x60000000, 24, 6, 64) + socket.inet_pton(socket.AF_INET6, SRC)
             + socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport) + b"\0" * 4)
    return struct.pack("!BBHI", 1, code, 0, 0) + inner


def test_icmpv6_error_about_our_syn_names_the_router():
    msg = packets.parse_icmp(_icmp6_error(3), v6=True)
    res = _match_icmp_msg(msg, "fd00:244:1::1", DST, 80, 40000, 0.0, ProbeKind.TCP_SYN, v6=True)
    assert res.result is ProbeOutcome.HOST_UNREACHABLE and res.reply_from == "fd00:244:1::1"
    assert (res.icmp_type, res.icmp_code) == (1, 3) and "ICMPv6 1/3" in res.detail
    # about someone else's segment: not ours
    other = packets.parse_icmp(_icmp6_error(3, sport=40001), v6=True)
    assert _match_icmp_msg(other, "fd00:244:1::1", DST, 80, 40000, 0.0, ProbeKind.TCP_SYN, v6=True) is None


def test_syn_ack_and_rst_over_ipv6():
    synack = packets.parse_tcp(struct.pack("!HHIIBBHHH", 80, 40000, 7, 101, 0x50, 0x12, 0, 0, 0))
    rst = packets.parse_tcp(struct.pack("!HHIIBBHHH", 81, 40000, 0, 101, 0x50, 0x14, 0, 0, 0))
    assert _match_segment(synack, DST, 80, 40000, 100, 0.0, ProbeKind.TCP_SYN).result is ProbeOutcome.OPEN
    assert _match_segment(rst, DST, 81, 40000, 100, 0.0, ProbeKind.TCP_SYN).result is ProbeOutcome.CLOSED


def test_nd_silence_with_a_live_control_is_host_unreachable():
    route = Route(destination=DST, interface="br0", gateway=None, source="fd00:50::1", on_link=True, kind="unicast")
    nd = ProbeResult(address=DST, kind=ProbeKind.ND, port=None, result=ProbeOutcome.SILENCE, privileged=True)
    echo = ProbeResult(address=DST, kind=ProbeKind.ICMP_ECHO, port=None, result=ProbeOutcome.SILENCE)
    ctl = ProbeResult(address="fd00:50::53", kind=ProbeKind.CONTROL_ICMP, port=None, result=ProbeOutcome.REPLY)
    assert derive_state(route, [nd, echo], [ctl]) is AddressState.HOST_UNREACHABLE
    rep = AddressReport(address=DST, route=route, probes=(nd, echo), control=(ctl,))
    assert "no neighbor advertisement on br0" in rep.summary


def test_nd_silence_without_a_control_says_what_it_cannot_tell():
    """No live neighbour on the link to probe (a node whose table holds none there): the
    silence stays silent, and the summary names the ND it has and what it cannot tell."""
    route = Route(destination=DST, interface="br0", gateway=None, source="fd00:50::1", on_link=True, kind="unicast")
    nd = ProbeResult(address=DST, kind=ProbeKind.ND, port=None, result=ProbeOutcome.SILENCE, privileged=True)
    syn = ProbeResult(address=DST, kind=ProbeKind.TCP_SYN, port=80, result=ProbeOutcome.SILENCE)
    rep = AddressReport(address=DST, route=route, probes=(nd, syn), control=())
    assert rep.state is AddressState.SILENT
    assert rep.summary == (f"{DST}: no neighbor advertisement on br0, and no live neighbour there to check "
                           "the link with: nobody holds the address, or the link itself is down")
    # IPv4's ARP the same
    route4 = Route(destination="192.168.50.77", interface="br0", gateway=None, source="192.168.50.1", on_link=True,
                   kind="unicast")
    arp = ProbeResult(address="192.168.50.77", kind=ProbeKind.ARP, port=None, result=ProbeOutcome.SILENCE)
    rep = AddressReport(address="192.168.50.77", route=route4, probes=(arp,), control=())
    assert rep.state is AddressState.SILENT and "no ARP reply on br0, and no live neighbour" in rep.summary


def test_reject_route_is_named_as_such():
    p = ProbeResult(address=DST, kind=ProbeKind.TCP_SYN, port=80, result=ProbeOutcome.ADMIN_PROHIBITED, reply_from="fd00:244:1::1", icmp_type=1, icmp_code=6)
    rep = AddressReport(address=DST, route=None, probes=(p,))
    assert rep.state is AddressState.FILTERED and "reject route to destination (ICMPv6 1/6)" in rep.summary


def test_unprivileged_ipv6_says_what_it_lost():
    lost = lost_without_raw(False, False, "not allowed", True, True)
    assert any("IPV6_RECVERR" in x for x in lost)
    assert any(x.startswith("Neighbour Discovery") for x in lost)
    assert not any(x.startswith("ARP") for x in lost)
