"""Frames -> DNS events: link types, tunnels, IPv4/IPv6 and the transports, on a fast path.

This is the part of the capture that sees every frame. It peels the link layer (Ethernet,
Linux cooked SLL/SLL2, raw IP, BSD loopback; VLAN tags, PPPoE, MPLS), overlay tunnels
(VXLAN, Geneve, GRE, IP in IP), IPv4/IPv6 (fragments through ``reassembly``), and hands
UDP/TCP payloads on a DNS port to ``dnswire``. DNS is recognised by port (53 plus
``extra ports``) and the payload is always decoded as DNS there (scapy's port dispatch
misses a reply to client port 4754). ICMP errors that quote a DNS packet become
``IcmpEvent``.

Nothing here raises on packet content: damage becomes a ``Malformed`` event.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.capture.dnswire import TCP, UDP, DnsEvent, DnsParseError, Transport, parse_dns
from toolkit.capture.linklayer import LINKTYPES as WRAPPED_LINKTYPES
from toolkit.capture.linklayer import peel
from toolkit.capture.reassembly import MAX_TCP_FLOWS, IpReassembler, TcpReassembler
from toolkit.sockerr import IcmpOrigin, NetError, classify_icmp

DNS_PORT = 53
MAX_VLAN_TAGS = 4
MAX_IPV6_EXT = 8
MAX_ORIGINS = 32  # distinct NFLOG groups/prefixes or PKTAP processes kept by name
_IPV6_EXT = frozenset({0, 43, 44, 51, 60})  # hop-by-hop, routing, fragment, AH, destination

_inet_ntop = socket.inet_ntop
_AF4 = socket.AF_INET
_AF6 = socket.AF_INET6



@dataclass(frozen=True, slots=True, kw_only=True)
class IcmpEvent:
    """An ICMP/ICMPv6 error that quotes a packet to or from a DNS port."""

    ts: float
    sender: str  # who sent the ICMP error (the server host, or a router on the path)
    to: str  # the host the error is addressed to (the sender of the quoted packet)
    icmp_type: int
    icmp_code: int
    family: IcmpOrigin
    kind: NetError  # port-unreachable, host-unreachable, ... (toolkit.sockerr.classify_icmp)
    transport: Transport  # the quoted packet's transport
    q_src: str
    q_dst: str
    q_sport: int
    q_dport: int
    txid: int | None = None  # when the quote reaches the DNS header
    qname: str | None = None
    qtype: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed:
    """A packet on a DNS port (or a capture record) that could not be decoded."""

    ts: float
    reason: str
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    transport: Transport | None = None


Event = DnsEvent | IcmpEvent | Malformed
Events = Sequence[Event]  # what one frame yields: usually one event or none

_VLAN = (0x8100, 0x88A8, 0x9100)
_PPP = {0x0021: 0x0800, 0x0057: 0x86DD}  # PPP protocol -> ethertype (RFC 1332, RFC 5072)
# Overlay encapsulations by UDP destination port: VXLAN (IANA, Linux), Geneve, VXLAN-GPE,
# GRE-in-UDP. Node captures on overlay networks carry pods' DNS inside these.
_UDP_TUNNELS = frozenset((4789, 8472, 6081, 4790, 4754))
MAX_TUNNEL_DEPTH = 3
_EMPTY: tuple[Event, ...] = ()


class Decoder:
    """Frames -> DNS/ICMP/Malformed events. One per capture (it holds TCP state)."""

    def __init__(self, ports: frozenset[int] | set[int] | tuple[int, ...] = (DNS_PORT,),
                 *, max_flows: int = MAX_TCP_FLOWS) -> None:
        self.ports = frozenset(ports) | {DNS_PORT}
        self.tcp = TcpReassembler(max_flows)
        self.frames = 0
        self.not_ip = 0
        self.not_dns = 0
        self.fragments = 0
        self.unsupported_linktype = 0
        self.dns_messages = 0
        self.icmp_errors = 0
        self.malformed = 0
        self.ipfrag = IpReassembler()
        self._addr4: dict[bytes, str] = {}
        self.tunneled: dict[str, int] = {}  # frames decapsulated, by overlay
        # Frames not analysed because their header chain goes past a bound (MAX_IPV6_EXT
        # extension headers, MAX_TUNNEL_DEPTH nested tunnels), by kind: counted and said,
        # never silently dropped (DNS may be inside).
        self.too_deep: dict[str, int] = {}
        # Frames whose link header says which way they went (Linux cooked: PACKET_OUTGOING
        # is 4, the rest arrived): a capture holding both directions shows both.
        self.outgoing = 0
        self.incoming = 0
        self.other_ethertypes: dict[int, int] = {}  # frames that were not IP, by ethertype
        self.origins: dict[str, list[int]] = {}  # [queries, responses] by who saw them (NFLOG, PKTAP)

    # The hot path: one method, local names, byte indexing.
    def decode(self, ts_ns: int, linktype: int, data: bytes) -> Events:
        """Return a sequence of events (usually one or none). Never raises."""
        self.frames += 1
        try:
            return self._decode(ts_ns / 1e9, linktype, data)
        except (IndexError, ValueError, OSError) as exc:  # defensive: damage is data
            self.malformed += 1
            return (Malformed(ts=ts_ns / 1e9, reason=f"undecodable frame: {type(exc).__name__}"),)

    def _decode(self, ts: float, lt: int, d: bytes) -> Events:
        """The link layer by link type (https://www.tcpdump.org/linktypes.html)."""
        n = len(d)
        if lt == 1:  # Ethernet
            if n < 14:
                return self._frame_bad("short Ethernet frame")
            et, off = (d[12] << 8) | d[13], 14
        elif lt == 113:  # Linux cooked SLL
            if n < 16:
                return self._frame_bad("short Linux cooked header")
            et, off = (d[14] << 8) | d[15], 16
            if d[1] == 4:
                self.outgoing += 1
            else:
                self.incoming += 1
        elif lt == 276:  # Linux cooked SLL2
            if n < 20:
                return self._frame_bad("short Linux cooked v2 header")
            et, off = (d[0] << 8) | d[1], 20
            if d[10] == 4:
                self.outgoing += 1
            else:
                self.incoming += 1
        elif lt in (101, 12, 14):  # raw IP: the version nibble decides
            if not n:
                return self._frame_bad("empty raw IP frame")
            v = d[0] >> 4
            et = 0x0800 if v == 4 else 0x86DD if v == 6 else 0
            off = 0
        elif lt == 228:
            et, off = 0x0800, 0
        elif lt == 229:
            et, off = 0x86DD, 0
        elif lt in (0, 108):  # BSD loopback: a 4-byte address family
            if n < 4:
                return self._frame_bad("short loopback header")
            fam = int.from_bytes(d[:4], "big" if lt == 108 else "little")
            if fam > 0xFFFF:
                fam = int.from_bytes(d[:4], "little" if lt == 108 else "big")
            et = 0x0800 if fam == 2 else 0x86DD if fam in (10, 24, 28, 30) else 0
            off = 4
        elif lt in WRAPPED_LINKTYPES:
            return self._wrapped(ts, lt, d)
        else:
            self.unsupported_linktype += 1
            return _EMPTY
        if et == 0x0800:
            return self._ipv4(ts, d, off)
        if et == 0x86DD:
            return self._ipv6(ts, d, off)
        return self._ether(ts, d, et, off, 0)

    def _wrapped(self, ts: float, lt: int, d: bytes) -> Events:
        """NFLOG, PKTAP, PPP, Cisco HDLC (``linklayer``): peel the header, decode what it
        wraps, and count the DNS messages by who saw them (an NFLOG group and prefix)."""
        got = peel(lt, d)
        if isinstance(got, str):
            return self._frame_bad(got)
        if got.inner is not None:
            evs = self._decode(ts, got.inner, d[got.off:])
        elif got.et:
            evs = self._ether(ts, d, got.et, got.off, 0)
        else:
            self.not_ip += 1
            return _EMPTY
        if got.origin is not None:
            for e in evs:
                if isinstance(e, DnsEvent):
                    o = self.origins
                    key = got.origin if got.origin in o or len(o) < MAX_ORIGINS else "other origins"
                    o.setdefault(key, [0, 0])[e.is_response] += 1
        return evs

    def _ether(self, ts: float, d: bytes, et: int, off: int, depth: int) -> Events:
        """What follows an ethertype: 802.1Q/QinQ tags, PPPoE session, MPLS, then IP."""
        n = len(d)
        for _ in range(MAX_VLAN_TAGS + 2):
            if et in _VLAN:  # 802.1Q / QinQ tags (Ethernet, SLL, SLL2, and inside tunnels)
                if off + 4 > n:
                    return self._frame_bad("short VLAN tag")
                et = (d[off + 2] << 8) | d[off + 3]
                off += 4
            elif et == 0x8864:  # PPPoE session (RFC 2516): 6-byte header, then the PPP protocol
                if off + 8 > n:
                    return self._frame_bad("short PPPoE header")
                et = _PPP.get((d[off + 6] << 8) | d[off + 7], 0)
                off += 8
                if not et:
                    self._other_ethertype(0x8864)
                    return _EMPTY
            elif et in (0x8847, 0x8848):  # MPLS: labels to the bottom of the stack, then IP
                for _ in range(8):
                    if off + 4 > n:
                        return self._frame_bad("short MPLS label")
                    bos = d[off + 2] & 1
                    off += 4
                    if bos:
                        break
                v = d[off] >> 4 if off < n else 0
                et = 0x0800 if v == 4 else 0x86DD if v == 6 else 0
                if not et:
                    self._other_ethertype(0x8847)
                    return _EMPTY
            else:
                break
        if et == 0x0800:
            return self._ipv4(ts, d, off, depth)
        if et == 0x86DD:
            return self._ipv6(ts, d, off, depth)
        self._other_ethertype(et)
        return _EMPTY

    def _other_ethertype(self, et: int) -> None:
        self.not_ip += 1
        o = self.other_ethertypes
        if et in o or len(o) < 16:
            o[et] = o.get(et, 0) + 1

    def _tunnel(self, ts: float, kind: str, d: bytes, off: int, end: int, depth: int, *,
                et: int | None = None) -> Events:
        """Decode the inner packet of an overlay: an Ethernet frame (et None) or an IP packet."""
        if depth >= MAX_TUNNEL_DEPTH:
            self.too_deep["tunnels"] = self.too_deep.get("tunnels", 0) + 1
            return _EMPTY
        self.tunneled[kind] = self.tunneled.get(kind, 0) + 1
        inner = d[off:end] if end < len(d) else (d[off:] if off else d)
        if et is None:
            if len(inner) < 14:
                return self._frame_bad("short inner Ethernet frame")
            et, ioff = (inner[12] << 8) | inner[13], 14
        else:
            ioff = 0
        return self._ether(ts, inner, et, ioff, depth + 1)

    def _gre(self, ts: float, d: bytes, p: int, end: int, depth: int, kind: str = "gre") -> Events:
        """GRE (RFC 2784/2890) and PPTP's enhanced GRE (RFC 2637, version 1)."""
        if p + 4 > end:
            self.not_dns += 1
            return _EMPTY
        f0, f1 = d[p], d[p + 1]
        ver = f1 & 0x07
        proto = (d[p + 2] << 8) | d[p + 3]
        q = p + 4
        if ver == 0:
            q += 4 * ((f0 >> 7 & 1) + (f0 >> 5 & 1) + (f0 >> 4 & 1))  # checksum+reserved, key, sequence
        elif ver == 1:
            q += 4 + 4 * ((f0 >> 4 & 1) + (f1 >> 7 & 1))  # key (always), sequence, acknowledgment
        else:
            self.not_dns += 1
            return _EMPTY
        if q > end:
            return self._frame_bad("short GRE header")
        if proto == 0x880B:  # PPP (PPTP): optional address/control FF 03, then the protocol
            if q + 2 <= end and d[q] == 0xFF and d[q + 1] == 0x03:
                q += 2
            if q + 1 > end:
                self.not_dns += 1
                return _EMPTY
            if d[q] & 1:  # protocol field compressed to one byte (RFC 1661 6.5)
                pp, q = d[q], q + 1
            else:
                pp, q = ((d[q] << 8) | d[q + 1]) if q + 2 <= end else 0, q + 2
            proto = _PPP.get(pp, 0)
            if not proto:
                self.not_dns += 1
                return _EMPTY
        if proto == 0x6558:  # transparent Ethernet bridging
            return self._tunnel(ts, kind, d, q, end, depth)
        if proto in (0x0800, 0x86DD) or proto in _VLAN or proto in (0x8847, 0x8864):
            return self._tunnel(ts, kind, d, q, end, depth, et=proto)
        self.not_dns += 1
        return _EMPTY

    def _udp_tunnel(self, ts: float, dport: int, d: bytes, p: int, end: int, depth: int) -> Events:
        """VXLAN (RFC 7348), VXLAN-GPE, Geneve (RFC 8926), GRE-in-UDP (RFC 8086)."""
        q = p + 8
        if dport in (4789, 8472):  # IANA VXLAN; 8472 is the Linux kernel's (flannel, Cilium)
            if q + 8 > end or not d[q] & 0x08:  # the I flag: a valid VNI
                self.not_dns += 1
                return _EMPTY
            return self._tunnel(ts, "vxlan", d, q + 8, end, depth)
        if dport == 6081:
            if q + 8 > end or d[q] >> 6:
                self.not_dns += 1
                return _EMPTY
            optlen = (d[q] & 0x3F) * 4
            proto = (d[q + 2] << 8) | d[q + 3]
            q += 8 + optlen
            if proto == 0x6558:
                return self._tunnel(ts, "geneve", d, q, end, depth)
            if proto in (0x0800, 0x86DD):
                return self._tunnel(ts, "geneve", d, q, end, depth, et=proto)
            self.not_dns += 1
            return _EMPTY
        if dport == 4790:  # VXLAN-GPE: next protocol 1 IPv4, 2 IPv6, 3 Ethernet
            if q + 8 > end:
                self.not_dns += 1
                return _EMPTY
            nxt = d[q + 3]
            if nxt == 3:
                return self._tunnel(ts, "vxlan-gpe", d, q + 8, end, depth)
            if nxt in (1, 2):
                return self._tunnel(ts, "vxlan-gpe", d, q + 8, end, depth, et=0x0800 if nxt == 1 else 0x86DD)
            self.not_dns += 1
            return _EMPTY
        return self._gre(ts, d, q, end, depth, "gre-in-udp")

    def _frame_bad(self, _reason: str) -> Events:
        """A damaged link header (``_reason`` names it at the call site): not known to be
        DNS, so it is counted, not reported."""
        self.not_ip += 1
        return _EMPTY

    def _ipv4(self, ts: float, d: bytes, off: int, depth: int = 0) -> Events:
        n = len(d)
        if off + 20 > n or d[off] >> 4 != 4:
            self.not_ip += 1
            return _EMPTY
        ihl = (d[off] & 0x0F) * 4
        total = (d[off + 2] << 8) | d[off + 3]
        end = off + total if total >= ihl and off + total <= n else n  # trims Ethernet padding
        frag = ((d[off + 6] & 0x3F) << 8) | d[off + 7]  # MF flag and fragment offset
        proto = d[off + 9]
        names = self._addr4
        a = d[off + 12:off + 16]
        src = names.get(a)
        if src is None:
            src = self._name4(a)
        a = d[off + 16:off + 20]
        dst = names.get(a)
        if dst is None:
            dst = self._name4(a)
        if ihl < 20:
            self.not_ip += 1
            return _EMPTY
        if frag:  # a fragment: DNS answers over the path MTU (RFC 791 reassembly)
            self.fragments += 1
            whole = self.ipfrag.add((4, src, dst, d[off + 4:off + 6], proto), ts, (frag & 0x1FFF) * 8,
                                    bool(frag & 0x2000), d[off + ihl:end])
            if whole is None:
                return _EMPTY
            return self._transport(ts, proto, whole, 0, len(whole), src, dst, 4, depth)
        return self._transport(ts, proto, d, off + ihl, end, src, dst, 4, depth)

    def _name4(self, a: bytes) -> str:
        # a capture has few distinct addresses: their text form is looked up, not rebuilt
        names = self._addr4
        if len(names) >= 65536:
            names.clear()
        s = names[a] = _inet_ntop(_AF4, a)
        return s

    def _ipv6(self, ts: float, d: bytes, off: int, depth: int = 0) -> Events:
        n = len(d)
        if off + 40 > n or d[off] >> 4 != 6:
            self.not_ip += 1
            return _EMPTY
        plen = (d[off + 4] << 8) | d[off + 5]
        nh = d[off + 6]
        src = _inet_ntop(_AF6, d[off + 8:off + 24])
        dst = _inet_ntop(_AF6, d[off + 24:off + 40])
        end = off + 40 + plen if plen and off + 40 + plen <= n else n
        p = off + 40
        for _ in range(MAX_IPV6_EXT):
            if nh in (0, 43, 60):
                if p + 8 > end:
                    return self._bad(ts, "truncated IPv6 extension header", src, dst)
                nh, p = d[p], p + (d[p + 1] + 1) * 8
            elif nh == 44:  # fragment header (RFC 8200 4.5)
                if p + 8 > end:
                    return self._bad(ts, "truncated IPv6 fragment header", src, dst)
                fo = (d[p + 2] << 8) | d[p + 3]
                if fo & 0xFFF9:
                    self.fragments += 1
                    whole = self.ipfrag.add((6, src, dst, d[p + 4:p + 8], d[p]), ts, fo & 0xFFF8, bool(fo & 1),
                                            d[p + 8:end])
                    if whole is None:
                        return _EMPTY
                    return self._transport(ts, d[p], whole, 0, len(whole), src, dst, 6, depth)
                nh, p = d[p], p + 8
            elif nh == 51:  # AH
                if p + 8 > end:
                    return self._bad(ts, "truncated AH header", src, dst)
                nh, p = d[p], p + (d[p + 1] + 2) * 4
            else:
                break
        else:
            if nh in _IPV6_EXT:  # still a header after MAX_IPV6_EXT of them: not analysed
                self.too_deep["ipv6-extension-headers"] = self.too_deep.get("ipv6-extension-headers", 0) + 1
                return _EMPTY
        return self._transport(ts, nh, d, p, end, src, dst, 6, depth)

    def _transport(self, ts: float, proto: int, d: bytes, p: int, end: int, src: str, dst: str, ipv: int,
                   depth: int = 0) -> Events:
        """The IP payload: UDP (inline: the common case), TCP, ICMP errors, tunnels."""
        if proto == 17:
            if p + 8 > end:
                self.not_dns += 1
                return _EMPTY
            sport = (d[p] << 8) | d[p + 1]
            dport = (d[p + 2] << 8) | d[p + 3]
            ulen = (d[p + 4] << 8) | d[p + 5]
            stop = p + ulen if ulen >= 8 and p + ulen <= end else end
            ports = self.ports
            if sport not in ports and dport not in ports:
                if dport in _UDP_TUNNELS:
                    return self._udp_tunnel(ts, dport, d, p, stop, depth)
                self.not_dns += 1
                return _EMPTY
            try:
                ev = parse_dns(d[p + 8:stop], ts, src, dst, sport, dport, UDP)
            except DnsParseError as exc:
                return self._bad(ts, f"UDP DNS: {exc}", src, dst, sport, dport, UDP)
            self.dns_messages += 1
            return (ev,)
        if proto == 6:
            return self._tcp(ts, d, p, end, src, dst)
        if proto == 1 and ipv == 4:
            return self._icmp(ts, d, p, end, src, dst, IcmpOrigin.ICMP, (3, 11, 12))
        if proto == 58 and ipv == 6:
            return self._icmp(ts, d, p, end, src, dst, IcmpOrigin.ICMP6, (1, 2, 3, 4))
        if proto == 47:
            return self._gre(ts, d, p, end, depth)
        if proto in (4, 41):  # IP in IP, IPv6 in IP (6in4)
            return self._tunnel(ts, "ipip", d, p, end, depth, et=0x0800 if proto == 4 else 0x86DD)
        self.not_dns += 1
        return _EMPTY

    def _tcp(self, ts: float, d: bytes, p: int, end: int, src: str, dst: str) -> Events:
        """A TCP segment on a DNS port: through the reassembler, out come whole messages."""
        if p + 20 > end:
            self.not_dns += 1
            return _EMPTY
        sport = (d[p] << 8) | d[p + 1]
        dport = (d[p + 2] << 8) | d[p + 3]
        if sport not in self.ports and dport not in self.ports:
            self.not_dns += 1
            return _EMPTY
        seq = int.from_bytes(d[p + 4:p + 8], "big")
        doff = (d[p + 12] >> 4) * 4
        tflags = d[p + 13]
        if doff < 20 or p + doff > end:
            return self._bad(ts, "bad TCP header length", src, dst, sport, dport, TCP)
        res = self.tcp.segment((src, sport, dst, dport), ts, seq, tflags, d[p + doff:end])
        self.tcp.sweep(ts)
        if isinstance(res, str):
            return self._bad(ts, res, src, dst, sport, dport, TCP)
        if not res:
            return _EMPTY
        out: list[Event] = []
        for msg in res:
            try:
                out.append(parse_dns(msg, ts, src, dst, sport, dport, TCP))
                self.dns_messages += 1
            except DnsParseError as exc:
                self.malformed += 1
                out.append(Malformed(ts=ts, reason=f"TCP DNS: {exc}", src=src, dst=dst, sport=sport,
                                     dport=dport, transport=TCP))
        return out

    def _icmp(self, ts: float, d: bytes, p: int, end: int, sender: str, to: str, family: IcmpOrigin,
              errors: tuple[int, ...]) -> Events:
        """An ICMP message: only the errors (``errors``: their types) quote a packet."""
        if p + 8 > end:
            return _EMPTY
        itype, icode = d[p], d[p + 1]
        if itype not in errors:
            return _EMPTY
        return self._icmp_quote(ts, d, p + 8, end, sender, to, itype, icode, family)

    def _icmp_quote(self, ts: float, d: bytes, q: int, end: int, sender: str, to: str, itype: int, icode: int,
                    family: IcmpOrigin) -> Events:
        """The quoted original packet: IP header + at least 8 bytes of transport (RFC 792,
        RFC 4443 2.4: as much of it as fits)."""
        if q + 1 > end:
            return _EMPTY
        v = d[q] >> 4
        if v == 4:
            if q + 20 > end:
                return _EMPTY
            ihl = (d[q] & 0x0F) * 4
            proto = d[q + 9]
            qsrc = _inet_ntop(_AF4, d[q + 12:q + 16])
            qdst = _inet_ntop(_AF4, d[q + 16:q + 20])
            t = q + ihl
        elif v == 6:
            if q + 40 > end:
                return _EMPTY
            proto = d[q + 6]
            qsrc = _inet_ntop(_AF6, d[q + 8:q + 24])
            qdst = _inet_ntop(_AF6, d[q + 24:q + 40])
            t = q + 40
        else:
            return _EMPTY
        if proto not in (6, 17) or t + 8 > end:
            return _EMPTY
        qs = (d[t] << 8) | d[t + 1]
        qd = (d[t + 2] << 8) | d[t + 3]
        if qs not in self.ports and qd not in self.ports:
            return _EMPTY
        txid = qtype = None
        qname = None
        if proto == 17:
            # RFC 792 asks only for the IP header and 8 bytes of the datagram: the UDP header
            # alone (its length may even say 8, an empty datagram) still names the socket the
            # refusal is about; the DNS header, when quoted, adds the query's ID and question.
            ulen = (d[t + 4] << 8) | d[t + 5]
            stop = min(end, t + ulen) if ulen >= 8 else end
            payload = d[t + 8:stop]
            if len(payload) >= 2:
                txid = (payload[0] << 8) | payload[1]
            if len(payload) >= 12:
                try:
                    ev = parse_dns(payload, ts, qsrc, qdst, qs, qd, UDP)
                    qname, qtype = ev.qname, ev.qtype
                except DnsParseError:
                    pass
        self.icmp_errors += 1
        return (IcmpEvent(ts=ts, sender=sender, to=to, icmp_type=itype, icmp_code=icode, family=family,
                          kind=classify_icmp(family, itype, icode), transport=UDP if proto == 17 else TCP,
                          q_src=qsrc, q_dst=qdst, q_sport=qs, q_dport=qd, txid=txid, qname=qname,
                          qtype=qtype),)

    def _bad(self, ts: float, reason: str, src: str | None = None, dst: str | None = None,
             sport: int | None = None, dport: int | None = None, transport: Transport | None = None) -> Events:
        self.malformed += 1
        return (Malformed(ts=ts, reason=reason, src=src, dst=dst, sport=sport, dport=dport, transport=transport),)

    def both_directions(self) -> bool | None:
        """True when the frames said which way they went and went both ways; None when
        they did not say (a one-way capture cannot then be told from a silent server)."""
        return True if self.outgoing and self.incoming else None

    def counters(self) -> dict[str, int]:
        """What the decoder saw, by kind: the report's ``decoder`` object."""
        return {"frames": self.frames, "dns_messages": self.dns_messages, "icmp_errors": self.icmp_errors,
                "malformed": self.malformed, "not_ip": self.not_ip, "not_dns": self.not_dns,
                "ip_fragments": self.fragments, "ip_reassembled": self.ipfrag.done,
                "ip_fragments_incomplete": self.ipfrag.expired + len(self.ipfrag.pending),
                "ip_fragments_overlapping": self.ipfrag.overlapping,
                "unsupported_linktype": self.unsupported_linktype,
                "tcp_gaps": self.tcp.gaps, "tcp_duplicate_segments": self.tcp.duplicates,
                "tcp_flows_evicted": self.tcp.evicted, "frames_outgoing": self.outgoing,
                "frames_incoming": self.incoming,
                **{f"not_analysed_{k.replace('-', '_')}": v for k, v in sorted(self.too_deep.items())},
                **{f"tunnel_{k}": v for k, v in sorted(self.tunneled.items())}}
