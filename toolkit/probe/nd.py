"""Neighbour Discovery for an on-link IPv6 address: the IPv6 analogue of the ARP probe.

With NET_RAW: Neighbor Solicitations (RFC 4861 4.3) sent on a raw ICMPv6 socket to the
target's solicited-node multicast group (RFC 4291 2.7.1), hop limit 255 (RFC 4861 7.1.1:
receivers drop ND with any other), and the Neighbor Advertisement for the target read back.
The kernel solicits MAX_MULTICAST_SOLICIT 3 times RETRANS_TIMER 1 s apart (RFC 4861 10); we
send as many 0.2 s apart beside it and check our silence against the kernel's neighbour
entry, exactly as ARP does (toolkit.probe.arp's docstring says why that is enough).
Without NET_RAW, ``toolkit.probe.arp.neighbour_probe`` reads what the kernel's own ND
concluded, exactly as for IPv4.
"""

from __future__ import annotations

import socket
import struct
import time

from toolkit.probe import packets
from toolkit.probe.arp import SOLICIT_COUNT, SOLICIT_INTERVAL, concluded, no_neighbour_resolution, sysfs_attr
from toolkit.probe.model import ProbeKind, ProbeOutcome, ProbeResult, ProbeSpec
from toolkit.probe.receive import Matcher, Resend, ms_since, receive

ND_INTERVAL = 1.0  # RFC 4861 10: RETRANS_TIMER, the kernel's spacing (ours: SOLICIT_INTERVAL)
ND_HOP_LIMIT = 255  # RFC 4861 7.1.1: receivers drop ND with any other hop limit
IPV6_MULTICAST_IF = getattr(socket, "IPV6_MULTICAST_IF", 17)
IPV6_MULTICAST_HOPS = getattr(socket, "IPV6_MULTICAST_HOPS", 18)
IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)


def nd_probe(address: str, interface: str, source: str | None, end: float, *,
             requests: int = SOLICIT_COUNT, interval: float = SOLICIT_INTERVAL) -> ProbeResult:
    """Up to ``requests`` Neighbor Solicitations ``interval`` apart until the target's
    advertisement, ``interval`` after the last one, or ``end`` (monotonic). Needs NET_RAW (PermissionError escapes).
    Interfaces without ND (IFF_NOARP: tun, wireguard) give ``not-run``."""
    probe = ProbeSpec(address=address, kind=ProbeKind.ND)
    flags = sysfs_attr(interface, "flags")
    if no_neighbour_resolution(flags):
        return probe.result(ProbeOutcome.NOT_RUN, privileged=True,
                            detail=f"{interface} does not use Neighbour Discovery (flags {flags})")
    mac = sysfs_attr(interface, "address")
    sender_mac = bytes.fromhex(mac.replace(":", "")) if mac and len(mac) == 17 else None
    index = socket.if_nametoindex(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ND_HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, ND_HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_IF, struct.pack("@I", index))
        if source:
            sock.bind((source, 0, 0, 0))
        sock.setblocking(False)
        group = packets.solicited_node(address)
        request = packets.neighbor_solicit(address, sender_mac)
        t0 = time.monotonic()
        resend = Resend(lambda: sock.sendto(request, (group, 0, 0, index)),
                        count=requests, interval=interval, start=t0)
        listeners = [(sock, _nd_matcher(probe, interface, t0))]
        return concluded(probe, interface, lambda until: receive(listeners, until, probe, resend=resend), t0, end,
                         resend, ("neighbor advertisement", "solicitations"))
    finally:
        sock.close()


def _nd_matcher(probe: ProbeSpec, interface: str, t0: float) -> Matcher:
    """The raw ICMPv6 socket's matcher: a Neighbor Advertisement for the address."""
    def match(data: bytes, _src: str) -> ProbeResult | None:
        na = packets.parse_neighbor_advert(data)
        if na is None or na.target != probe.address:
            return None
        return probe.result(ProbeOutcome.REPLY, reply_from=probe.address, rtt_ms=ms_since(t0), privileged=True,
                            detail=f"neighbor advertisement: {probe.address} is at {na.lladdr or '?'} on {interface}")
    return match
