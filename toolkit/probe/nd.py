"""Neighbour Discovery for an on-link IPv6 address: the IPv6 analogue of the ARP probe.

With NET_RAW: Neighbor Solicitations (RFC 4861 4.3) sent on a raw ICMPv6 socket to the
target's solicited-node multicast group (RFC 4291 2.7.1), hop limit 255 (RFC 4861 7.1.1:
receivers drop ND with any other), one a second like the kernel (MAX_MULTICAST_SOLICIT 3,
RETRANS_TIMER 1 s, RFC 4861 10), and the Neighbor Advertisement for the target read back.
Without NET_RAW, ``toolkit.probe.arp.neighbour_probe`` reads what the kernel's own ND
concluded, exactly as for IPv4.
"""

from __future__ import annotations

import select
import socket
import struct
import time

from toolkit import signals
from toolkit.probe import packets
from toolkit.probe.arp import _sysfs
from toolkit.probe.model import ProbeKind, ProbeOutcome, ProbeResult

ND_INTERVAL = 1.0  # RFC 4861 10: RETRANS_TIMER
MAX_PACKETS = 100_000
IPV6_MULTICAST_IF = getattr(socket, "IPV6_MULTICAST_IF", 17)
IPV6_MULTICAST_HOPS = getattr(socket, "IPV6_MULTICAST_HOPS", 18)
IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)


def nd_probe(address: str, interface: str, source: str | None, end: float, *,
             requests: int = 3) -> ProbeResult:
    """Up to ``requests`` Neighbor Solicitations one second apart until the target's
    advertisement or ``end`` (monotonic). Needs NET_RAW (PermissionError escapes).
    Interfaces without ND (IFF_NOARP: tun, wireguard) give ``not-run``."""
    flags = _sysfs(interface, "flags")
    if flags and int(flags, 16) & 0x80:  # IFF_NOARP: no neighbour resolution on this link
        return ProbeResult(address=address, kind=ProbeKind.ND, port=None, result=ProbeOutcome.NOT_RUN, privileged=True,
                           detail=f"{interface} does not use Neighbour Discovery (flags {flags})")
    mac = _sysfs(interface, "address")
    sender_mac = bytes.fromhex(mac.replace(":", "")) if mac and len(mac) == 17 else None
    index = socket.if_nametoindex(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_IF, struct.pack("@I", index))
        if source:
            sock.bind((source, 0, 0, 0))
        sock.setblocking(False)
        group = packets.solicited_node(address)
        request = packets.neighbor_solicit(address, sender_mac)
        t0 = time.monotonic()
        sent = seen = 0
        while seen < MAX_PACKETS:
            if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
                return ProbeResult(address=address, kind=ProbeKind.ND, port=None,
                                   result=ProbeOutcome.NOT_RUN, detail=signals.cut_detail())
            now = time.monotonic()
            if now >= end:
                break
            if sent < requests and now >= t0 + sent * ND_INTERVAL:
                sock.sendto(request, (group, 0, 0, index))
                sent += 1
            next_send = t0 + sent * ND_INTERVAL if sent < requests else end
            wait = max(0.0, min(end, next_send) - time.monotonic())
            if not select.select([sock], [], [], signals.tick(wait))[0]:
                continue
            while seen < MAX_PACKETS:
                try:
                    data, _addr = sock.recvfrom(2048)
                except (BlockingIOError, InterruptedError):
                    break
                seen += 1
                na = packets.parse_neighbor_advert(data)
                if na is not None and na.target == address:
                    return ProbeResult(address=address, kind=ProbeKind.ND, port=None, result=ProbeOutcome.REPLY, reply_from=address,
                                       rtt_ms=(time.monotonic() - t0) * 1000.0, privileged=True,
                                       detail=f"neighbor advertisement: {address} is at "
                                              f"{na.lladdr or '?'} on {interface}")
        return ProbeResult(address=address, kind=ProbeKind.ND, port=None, result=ProbeOutcome.SILENCE, privileged=True,
                           detail=f"no neighbor advertisement to {sent} solicitations on {interface} "
                                  f"in {time.monotonic() - t0:.1f} s")
    finally:
        sock.close()
