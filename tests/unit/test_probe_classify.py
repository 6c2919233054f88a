"""Probe classification from recorded packets and kernel reports (no root, no network)."""
import errno
import socket
import struct

import pytest

from toolkit.probe import packets
from toolkit.probe.icmp import _match as match_echo
from toolkit.probe.model import ProbeKind, result_from_errno, result_from_icmp, result_from_kind
from toolkit.probe.tcp import _match_icmp, _match_tcp

# Recorded in the lab (pod 10.244.1.10, node 10.244.1.1) with a raw socket:
# ICMP 3/1 from the node, ~3.05 s after our SYN 10.244.1.10:42333 -> 192.168.50.77:80
REC_HOST_UNREACH = bytes.fromhex(
    "45c00048d0a300004001915f0af401010af4010a0301fc10000000004500002c541140003f06e8c7"
    "0af4010ac0a8324da55d00507f3ac656000000006002faf0b3030000020405b4")
# RST,ACK from 192.168.50.20:81 to our SYN from port 50831 with seq 0x9c43fd12
REC_RST = bytes.fromhex("45000028000040003f063d16c0a832140af4010a0051c68f000000009c43fd135014000050de0000")


def ipv4(src, dst, proto, payload, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr + payload


def icmp_error(icmp_type, code, quoted):
    body = struct.pack("!BBHI", icmp_type, code, 0, 0) + quoted[:28]
    return body


def syn_quote(src, dst, sport, dport, seq=1):
    return ipv4(src, dst, 6, packets.tcp_syn(src, dst, sport, dport, seq))


# ------------------------------------------------------------------ ICMP type/code tables

@pytest.mark.parametrize("t,c,tcp,expected", [
    (3, 0, True, "net-unreachable"),
    (3, 1, True, "host-unreachable"),
    (3, 3, True, "closed"),            # port-unreachable to a TCP probe: host up, port closed
    (3, 3, False, "error"),            # ... to an echo it makes no sense
    (3, 6, True, "net-unreachable"),
    (3, 7, True, "host-unreachable"),
    (3, 9, True, "admin-prohibited"),
    (3, 10, True, "admin-prohibited"),
    (3, 13, True, "admin-prohibited"),
    (3, 4, True, "error"),             # frag needed: not a reachability answer
    (11, 0, True, "ttl-exceeded"),
    (11, 0, False, "ttl-exceeded"),
    (12, 0, True, "error"),
])
def test_icmp_v4(t, c, tcp, expected):
    assert result_from_icmp(t, c, tcp=tcp) == expected


@pytest.mark.parametrize("t,c,expected", [
    (1, 0, "net-unreachable"), (1, 1, "admin-prohibited"), (1, 3, "host-unreachable"),
    (1, 4, "closed"), (1, 5, "admin-prohibited"), (1, 6, "admin-prohibited"), (3, 0, "ttl-exceeded"),
])
def test_icmp_v6(t, c, expected):
    assert result_from_icmp(t, c, tcp=True, v6=True) == expected


@pytest.mark.parametrize("err,expected", [
    (errno.ECONNREFUSED, "closed"), (errno.ECONNRESET, "closed"),
    (errno.EHOSTUNREACH, "host-unreachable"),  # ambiguous with admin-prohibited: detail says so
    (errno.ENETUNREACH, "net-unreachable"), (errno.EACCES, "admin-prohibited"),
    (errno.EPERM, "admin-prohibited"), (errno.ETIMEDOUT, "silence"), (errno.EINVAL, "error"),
])
def test_errno(err, expected):
    assert result_from_errno(err) == expected


def test_sockerr_kinds_map():
    assert result_from_kind("port-unreachable") == "closed"
    assert result_from_kind("host-unreachable") == "host-unreachable"
    assert result_from_kind("admin-prohibited") == "admin-prohibited"
    assert result_from_kind("frag-needed") == "error"


# ------------------------------------------------------------------ recorded raw packets

def test_recorded_host_unreachable_matches_our_syn():
    res = _match_icmp(REC_HOST_UNREACH, "192.168.50.77", 80, 42333, 0.0, ProbeKind.TCP_SYN)
    assert res is not None
    assert (res.result, res.reply_from, res.icmp_type, res.icmp_code) == ("host-unreachable", "10.244.1.1", 3, 1)
    assert res.privileged


def test_recorded_host_unreachable_other_probe_ignored():
    assert _match_icmp(REC_HOST_UNREACH, "192.168.50.77", 80, 40000, 0.0, ProbeKind.TCP_SYN) is None
    assert _match_icmp(REC_HOST_UNREACH, "192.168.50.77", 81, 42333, 0.0, ProbeKind.TCP_SYN) is None
    assert _match_icmp(REC_HOST_UNREACH, "192.168.50.78", 80, 42333, 0.0, ProbeKind.TCP_SYN) is None


def test_recorded_rst_is_closed():
    res = _match_tcp(REC_RST, "192.168.50.20", 81, 50831, 0x9C43FD12, 0.0, ProbeKind.TCP_SYN)
    assert res is not None and res.result == "closed" and res.reply_from == "192.168.50.20"
    assert _match_tcp(REC_RST, "192.168.50.20", 80, 50831, 0x9C43FD12, 0.0, ProbeKind.TCP_SYN) is None


def test_syn_ack_is_open_only_with_our_ack():
    seq = 1000
    synack = struct.pack("!HHIIBBHHH", 443, 5555, 777, seq + 1, 0x50, 0x12, 1000, 0, 0)
    pkt = ipv4("10.0.0.5", "10.0.0.1", 6, synack)
    assert _match_tcp(pkt, "10.0.0.5", 443, 5555, seq, 0.0, ProbeKind.TCP_SYN).result == "open"
    assert _match_tcp(pkt, "10.0.0.5", 443, 5555, seq + 7, 0.0, ProbeKind.TCP_SYN) is None


@pytest.mark.parametrize("t,c,expected", [
    (3, 1, "host-unreachable"), (3, 0, "net-unreachable"), (3, 3, "closed"),
    (3, 9, "admin-prohibited"), (3, 10, "admin-prohibited"), (3, 13, "admin-prohibited"),
    (11, 0, "ttl-exceeded"),
])
def test_icmp_errors_quoting_a_syn(t, c, expected):
    quoted = syn_quote("10.0.0.1", "10.9.9.9", 5555, 443)
    pkt = ipv4("10.0.0.254", "10.0.0.1", 1, icmp_error(t, c, quoted))
    res = _match_icmp(pkt, "10.9.9.9", 443, 5555, 0.0, ProbeKind.TCP_SYN)
    assert res.result == expected and res.reply_from == "10.0.0.254" and (res.icmp_type, res.icmp_code) == (t, c)


def test_echo_reply_and_errors():
    reply = packets.parse_icmp(struct.pack("!BBHHH", 0, 0, 0, 77, 5) + b"x")
    assert match_echo(reply, "10.9.9.9", "10.9.9.9", 77, 5, 0.0, ProbeKind.ICMP_ECHO, False, privileged=True).result == "reply"
    # a reply for someone else's ping (other id) or from another host is not ours
    assert match_echo(reply, "10.9.9.9", "10.9.9.9", 78, 5, 0.0, ProbeKind.ICMP_ECHO, False, privileged=True) is None
    assert match_echo(reply, "10.9.9.8", "10.9.9.9", 77, 5, 0.0, ProbeKind.ICMP_ECHO, False, privileged=True) is None
    quoted = ipv4("10.0.0.1", "10.9.9.9", 1, packets.icmp_echo(77, 5))
    err = packets.parse_icmp(icmp_error(3, 1, quoted))
    res = match_echo(err, "10.0.0.254", "10.9.9.9", 77, 5, 0.0, ProbeKind.ICMP_ECHO, False, privileged=True)
    assert res.result == "host-unreachable" and res.reply_from == "10.0.0.254"
    # the unprivileged socket: the kernel rewrote the id, match on seq only
    assert match_echo(reply, "10.9.9.9", "10.9.9.9", None, 5, 0.0, ProbeKind.ICMP_ECHO, False, privileged=False).result == "reply"


# ------------------------------------------------------------------ packet builders

def test_syn_checksum_verifies():
    seg = packets.tcp_syn("10.0.0.1", "10.0.0.2", 1234, 80, 42)
    pseudo = socket.inet_aton("10.0.0.1") + socket.inet_aton("10.0.0.2") + struct.pack("!BBH", 0, 6, len(seg))
    assert packets.checksum(pseudo + seg) == 0
    tcp = packets.parse_tcp(seg)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.flags) == (1234, 80, 42, packets.TCP_SYN)


def test_echo_checksum_verifies():
    assert packets.checksum(packets.icmp_echo(1, 2)) == 0


def test_arp_round_trip():
    req = packets.arp_request(b"\x02\x00\x00\x00\x00\x01", "10.0.0.1", "10.0.0.2")
    assert len(req) == 28
    reply = bytearray(req)
    reply[7] = 2  # op: reply
    reply[8:14] = b"\x02\x00\x00\x00\x00\x02"
    reply[14:18] = socket.inet_aton("10.0.0.2")
    parsed = packets.parse_arp_reply(bytes(reply))
    assert parsed.sender_ip == "10.0.0.2" and parsed.sender_mac == "02:00:00:00:00:02"
    assert packets.parse_arp_reply(req) is None  # a request is not a reply


def test_truncated_inputs_do_not_raise():
    for data in (b"", b"\x45", REC_HOST_UNREACH[:30], REC_RST[:21]):
        assert packets.parse_ipv4(data) is None or True
        _match_icmp(data, "192.168.50.77", 80, 42333, 0.0, ProbeKind.TCP_SYN)
        _match_tcp(data, "192.168.50.20", 81, 50831, 1, 0.0, ProbeKind.TCP_SYN)
    assert packets.parse_icmp(b"\x03\x01") is None
