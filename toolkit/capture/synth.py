"""Synthetic DNS frames built with ``struct``: for tests, benchmarks and the demo.

Fast enough to write a 200,000-packet pcap in a few seconds (scapy needs minutes), and
independent of the decoder it feeds (checksums are real, so tshark accepts the frames).
"""

from __future__ import annotations

import socket
import struct

from toolkit.capture.pcapio import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW

_MAC_A = bytes.fromhex("02000000000a")
_MAC_B = bytes.fromhex("02000000000b")


def encode_name(name: str) -> bytes:
    """A name in wire format (RFC 1035 3.1), uncompressed."""
    name = name.rstrip(".")
    if not name:
        return b"\x00"
    return b"".join(bytes([len(lab)]) + lab.encode("ascii") for lab in name.split(".")) + b"\x00"


def dns_query(txid: int, qname: str, qtype: int = 1, *, rd: bool = True) -> bytes:
    """A DNS query message with one question."""
    flags = 0x0100 if rd else 0
    return struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0) + encode_name(qname) + struct.pack("!HH", qtype, 1)


def dns_response(txid: int, qname: str, qtype: int = 1, *, rcode: int = 0, addresses: tuple[str, ...] = (),
                 tc: bool = False, ttl: int = 30) -> bytes:
    """A DNS response to one question, with A/AAAA records for ``addresses``."""
    flags = 0x8180 | rcode | (0x0200 if tc else 0)
    rrs = b""
    for a in addresses:
        if ":" in a:
            rrs += b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, ttl, 16) + socket.inet_pton(socket.AF_INET6, a)
        else:
            rrs += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_pton(socket.AF_INET, a)
    return (struct.pack("!HHHHHH", txid, flags, 1, len(addresses), 0, 0) + encode_name(qname)
            + struct.pack("!HH", qtype, 1) + rrs)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s: int = sum(struct.unpack("!%dH" % (len(data) // 2), data))  # RFC 1071 one's complement sum
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _is6(addr: str) -> bool:
    return ":" in addr


def ip_packet(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0, ttl: int = 64) -> bytes:
    """An IPv4 (with its header checksum) or IPv6 packet around ``payload``."""
    if _is6(src):
        return (struct.pack("!IHBB", 0x60000000, len(payload), proto, ttl)
                + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, ttl, proto, 0,
                      socket.inet_pton(socket.AF_INET, src), socket.inet_pton(socket.AF_INET, dst))
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return hdr + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    if _is6(src):
        return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack("!IxxxB", length, proto))
    return (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
            + struct.pack("!xBH", proto, length))


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, checksum: bool = True) -> bytes:
    """A UDP datagram in an IP packet (with a real checksum unless told not to)."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if checksum:
        c = _csum(_pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
        seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    return ip_packet(src, dst, 17, seg)


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"") -> bytes:
    """A TCP segment in an IP packet; ``flags`` as letters (S, A, P, F, R)."""
    bits = 0
    for ch, v in (("F", 1), ("S", 2), ("R", 4), ("P", 8), ("A", 16)):
        if ch in flags:
            bits |= v
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, bits, 65535, 0,
                      0) + payload
    c = _csum(_pseudo(src, dst, 6, len(seg)) + seg)
    seg = seg[:16] + struct.pack("!H", c) + seg[18:]
    return ip_packet(src, dst, 6, seg)


def icmp_error(sender: str, to: str, quoted_ip_packet: bytes, *, icmp_type: int | None = None,
               code: int | None = None) -> bytes:
    """ICMP (v4: 3/3 by default) or ICMPv6 (1/4) error quoting a packet."""
    if _is6(sender):
        t = 1 if icmp_type is None else icmp_type
        c = 4 if code is None else code
        body = struct.pack("!BBHI", t, c, 0, 0) + quoted_ip_packet[:1232]
        ck = _csum(_pseudo(sender, to, 58, len(body)) + body)
        body = body[:2] + struct.pack("!H", ck) + body[4:]
        return ip_packet(sender, to, 58, body)
    t = 3 if icmp_type is None else icmp_type
    c = 3 if code is None else code
    body = struct.pack("!BBHI", t, c, 0, 0) + quoted_ip_packet[:548]
    body = body[:2] + struct.pack("!H", _csum(body)) + body[4:]
    return ip_packet(sender, to, 1, body)


def frame(ip: bytes, linktype: int = LINKTYPE_ETHERNET, *, vlans: tuple[int, ...] = (),
          outgoing: bool = False) -> bytes:
    """Wrap an IP packet in a link-layer header of the given type."""
    et = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    tags = b""
    for i, vid in enumerate(vlans):
        tpid = 0x88A8 if (len(vlans) > 1 and i == 0) else 0x8100
        tags += struct.pack("!HH", tpid, vid & 0x0FFF)
    if linktype == LINKTYPE_ETHERNET:
        if tags:
            first_tpid = struct.unpack("!H", tags[:2])[0]
            return _MAC_B + _MAC_A + struct.pack("!H", first_tpid) + tags[2:] + struct.pack("!H", et) + ip
        return _MAC_B + _MAC_A + struct.pack("!H", et) + ip
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 4 if outgoing else 0, 1, 6, _MAC_A + b"\x00\x00", et) + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", et, 0, 2, 1, 4 if outgoing else 0, 6, _MAC_A + b"\x00\x00") + ip
    if linktype in (LINKTYPE_RAW, 228, 229, 12, 14):
        return ip
    raise ValueError(f"synth: unsupported link type {linktype}")
