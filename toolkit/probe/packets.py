"""Build and parse the few packets the raw probes need (pure functions, unit-tested).

Hand-built with struct rather than scapy: a TCP SYN, an ICMP echo and an ARP request are a
few dozen bytes, and importing scapy costs 0.5-1.4 s (DESIGN.md "Measured") and its
sr()/sniff() machinery is not meant for dozens of concurrent probes in threads.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_ICMPV6 = 58
ETH_P_ARP = 0x0806

TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def tcp_syn(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    """A TCP SYN header (with an MSS option) for an IPv4 raw socket; checksum included."""
    options = struct.pack("!BBH", 2, 4, 1460)  # MSS 1460
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, TCP_SYN, 64240, 0, 0)
    segment = header + options
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, IPPROTO_TCP, len(segment))
    csum = checksum(pseudo + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def tcp_syn6(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    """A TCP SYN header (with an MSS option) for an IPv6 raw socket; checksum included.

    The kernel fills no checksum on a raw IPPROTO_TCP IPv6 socket (it does only for ICMPv6,
    RFC 3542 3.1), so it is computed here over the IPv6 pseudo-header of RFC 8200 8.1:
    source, destination, 32-bit upper-layer length, 3 zero bytes, next header (6)."""
    options = struct.pack("!BBH", 2, 4, 1440)  # MSS 1440: 1500 - 40 (IPv6) - 20 (TCP)
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, TCP_SYN, 64800, 0, 0)
    segment = header + options
    pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!I3xB", len(segment), IPPROTO_TCP))
    csum = checksum(pseudo + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def solicited_node(address: str) -> str:
    """The solicited-node multicast group of an IPv6 address (RFC 4291 2.7.1):
    ff02::1:ff00:0/104 plus the address's low 24 bits."""
    low = ipaddress.IPv6Address(address).packed[13:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low))


def neighbor_solicit(target: str, sender_mac: bytes | None) -> bytes:
    """An ICMPv6 Neighbor Solicitation (RFC 4861 4.3) with a source link-layer address
    option; the kernel fills the ICMPv6 checksum."""
    body = struct.pack("!BBHI", 135, 0, 0, 0) + socket.inet_pton(socket.AF_INET6, target)
    if sender_mac:
        body += struct.pack("!BB", 1, 1) + sender_mac  # option 1, length 1 (8 bytes)
    return body


@dataclass(frozen=True)
class NeighborAdvert:
    """A Neighbor Advertisement: the address it is for, its link-layer address, and whether
    it answers a solicitation."""

    target: str
    lladdr: str | None
    solicited: bool


def parse_neighbor_advert(data: bytes) -> NeighborAdvert | None:
    """An ICMPv6 Neighbor Advertisement (RFC 4861 4.4), without the IPv6 header."""
    if len(data) < 24 or data[0] != 136 or data[1] != 0:
        return None
    flags = data[4]
    target = str(ipaddress.IPv6Address(data[8:24]))
    lladdr = None
    opts = data[24:]
    for _ in range(16):  # bounded walk over the options
        if len(opts) < 8 or opts[1] == 0:
            break
        size = opts[1] * 8
        if opts[0] == 2 and size >= 8:  # target link-layer address
            lladdr = ":".join(f"{b:02x}" for b in opts[2:8])
        opts = opts[size:]
    return NeighborAdvert(target, lladdr, bool(flags & 0x40))


def icmp_echo(ident: int, seq: int, payload: bytes = b"podtriage-probe", *, v6: bool = False) -> bytes:
    """An ICMP echo request (ICMPv6: type 128; the kernel fills the v6 checksum)."""
    icmp_type = 128 if v6 else 8
    header = struct.pack("!BBHHH", icmp_type, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    if v6:
        return header + payload
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", icmp_type, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


def arp_request(sender_mac: bytes, sender_ip: str, target_ip: str) -> bytes:
    """An ARP who-has (RFC 826) payload for an AF_PACKET SOCK_DGRAM socket."""
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, sender_mac, socket.inet_aton(sender_ip),
                       b"\x00" * 6, socket.inet_aton(target_ip))


@dataclass(frozen=True)
class ArpReply:
    """An ARP is-at: who holds the address (MAC), and the address."""

    sender_mac: str
    sender_ip: str


def parse_arp_reply(data: bytes) -> ArpReply | None:
    """An Ethernet/IPv4 ARP reply (RFC 826 op 2), without the link header; None otherwise."""
    if len(data) < 28:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _tha, _tpa = struct.unpack("!HHBBH6s4s6s4s", data[:28])
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4 or op != 2:
        return None
    return ArpReply(":".join(f"{b:02x}" for b in sha), socket.inet_ntoa(spa))


@dataclass(frozen=True)
class Ipv4:
    """An IPv4 packet's addresses, protocol and payload (the header as a raw socket gives it)."""

    src: str
    dst: str
    proto: int
    payload: bytes


def parse_ipv4(data: bytes) -> Ipv4 | None:
    """An IPv4 packet (RFC 791), payload cut at the total length; None when it is not one."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    if ihl < 20 or len(data) < ihl:
        return None
    total = struct.unpack_from("!H", data, 2)[0]
    end = min(len(data), total) if total >= ihl else len(data)
    return Ipv4(socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), data[9], data[ihl:end])


@dataclass(frozen=True)
class TcpReply:
    """The part of a TCP header a SYN probe looks at: ports, sequence numbers, flags."""

    sport: int
    dport: int
    seq: int
    ack: int
    flags: int

    @property
    def syn_ack(self) -> bool:
        """SYN and ACK both set: the port is open."""
        return self.flags & (TCP_SYN | TCP_ACK) == (TCP_SYN | TCP_ACK)

    @property
    def rst(self) -> bool:
        """RST set: the port is closed."""
        return bool(self.flags & TCP_RST)


def parse_tcp(segment: bytes) -> TcpReply | None:
    """A TCP header (RFC 9293 3.1), without the IP header; None when too short."""
    if len(segment) < 14:
        return None
    sport, dport, seq, ack, _off, flags = struct.unpack_from("!HHIIBB", segment)
    return TcpReply(sport, dport, seq, ack, flags)


@dataclass(frozen=True, kw_only=True)
class IcmpMessage:
    """An ICMP(v6) message. For errors, ``inner_*`` describe the packet it is about
    (our probe): its destination, protocol and the first 8 bytes of its transport header."""

    icmp_type: int
    code: int
    ident: int | None = None  # echo / echo reply
    seq: int | None = None
    inner_dst: str | None = None
    inner_proto: int | None = None
    inner_head: bytes = b""

    @property
    def inner_ports(self) -> tuple[int, int] | None:
        """(source, destination) port of the TCP/UDP packet this error quotes."""
        if len(self.inner_head) >= 4 and self.inner_proto in (IPPROTO_TCP, 17):
            return struct.unpack_from("!HH", self.inner_head)
        return None

    @property
    def inner_echo(self) -> tuple[int, int] | None:
        """(ident, seq) of an echo request this error is about."""
        if len(self.inner_head) >= 8 and (
                (self.inner_proto == IPPROTO_ICMP and self.inner_head[0] == 8)
                or (self.inner_proto == IPPROTO_ICMPV6 and self.inner_head[0] == 128)):
            return struct.unpack_from("!HH", self.inner_head, 4)
        return None


V4_ERRORS = (3, 11, 12)
V6_ERRORS = (1, 2, 3, 4)


def parse_icmp(data: bytes, *, v6: bool = False) -> IcmpMessage | None:
    """Parse an ICMP message (without the outer IP header)."""
    if len(data) < 8:
        return None
    itype, code = data[0], data[1]
    if (not v6 and itype in (0, 8)) or (v6 and itype in (128, 129)):
        ident, seq = struct.unpack_from("!HH", data, 4)
        return IcmpMessage(icmp_type=itype, code=code, ident=ident, seq=seq)
    if (not v6 and itype in V4_ERRORS) or (v6 and itype in V6_ERRORS):
        inner = data[8:]
        if v6:
            if len(inner) < 40:
                return IcmpMessage(icmp_type=itype, code=code)
            dst = str(ipaddress.IPv6Address(inner[24:40]))
            return IcmpMessage(icmp_type=itype, code=code, inner_dst=dst, inner_proto=inner[6], inner_head=inner[40:48])
        ip = parse_ipv4(inner)
        if ip is None:
            return IcmpMessage(icmp_type=itype, code=code)
        return IcmpMessage(icmp_type=itype, code=code, inner_dst=ip.dst, inner_proto=ip.proto,
                           inner_head=ip.payload[:8])
    return IcmpMessage(icmp_type=itype, code=code)
