"""ARP for an on-link address: who-has on an AF_PACKET socket (NET_RAW), or, unprivileged,
what the kernel's own ARP concluded (the neighbour table, read after the TCP/ICMP probes
made the kernel resolve the address)."""

from __future__ import annotations

import socket
import time

from toolkit.errors import best_effort
from toolkit.probe import packets
from toolkit.probe.model import ProbeKind, ProbeOutcome, ProbeResult, ProbeSpec
from toolkit.probe.receive import Matcher, Resend, ms_since, receive

ARP_INTERVAL = 1.0  # arping's default: one request a second
IFF_NOARP = 0x80  # include/uapi/linux/if.h: no link-layer address resolution on this link
ARPHRD_ETHER = "1"  # /sys/class/net/IF/type of an Ethernet link


def sysfs_attr(interface: str, name: str) -> str | None:
    """/sys/class/net/INTERFACE/NAME (type, address, flags...), or None when unreadable."""
    if "/" in interface or interface in (".", ".."):
        return None
    try:
        with open(f"/sys/class/net/{interface}/{name}", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def no_neighbour_resolution(flags: str | None) -> bool:
    """The link has IFF_NOARP (tun, wireguard): neither ARP nor ND runs on it."""
    return bool(flags and int(flags, 16) & IFF_NOARP)


def arp_probe(address: str, interface: str, source: str, end: float, *, requests: int = 3) -> ProbeResult:
    """Up to ``requests`` who-has one second apart until a reply or ``end`` (monotonic).

    Needs NET_RAW (PermissionError escapes). Interfaces without ARP (not Ethernet, or
    NOARP like a tun/wireguard link) give ``not-run``."""
    probe = ProbeSpec(address=address, kind=ProbeKind.ARP)
    hw_type = sysfs_attr(interface, "type")
    mac = sysfs_attr(interface, "address")
    flags = sysfs_attr(interface, "flags")
    if hw_type != ARPHRD_ETHER or not mac or no_neighbour_resolution(flags):
        return probe.result(ProbeOutcome.NOT_RUN, privileged=True,
                            detail=f"{interface} does not use ARP (type {hw_type}, flags {flags})")
    sender_mac = bytes.fromhex(mac.replace(":", ""))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(packets.ETH_P_ARP))
    try:
        sock.bind((interface, packets.ETH_P_ARP))
        sock.setblocking(False)
        request = packets.arp_request(sender_mac, source, address)
        t0 = time.monotonic()
        resend = Resend(lambda: sock.sendto(request, (interface, packets.ETH_P_ARP, 0, 1, b"\xff" * 6)),
                        count=requests, interval=ARP_INTERVAL, start=t0)
        res = receive([(sock, _arp_matcher(probe, interface, t0))], end, probe, resend=resend)
        if res is not None:
            return res
        return probe.result(
            ProbeOutcome.SILENCE, privileged=True,
            detail=f"no ARP reply to {resend.sent} who-has on {interface} in {time.monotonic() - t0:.1f} s")
    finally:
        sock.close()


def _arp_matcher(probe: ProbeSpec, interface: str, t0: float) -> Matcher:
    """The AF_PACKET socket's matcher: an ARP reply from the address."""
    def match(data: bytes, _ifname: str) -> ProbeResult | None:
        reply = packets.parse_arp_reply(data)
        if reply is None or reply.sender_ip != probe.address:
            return None
        return probe.result(ProbeOutcome.REPLY, reply_from=probe.address, rtt_ms=ms_since(t0), privileged=True,
                            detail=f"is-at {reply.sender_mac} on {interface}")
    return match


def neighbour_probe(address: str, interface: str | None) -> ProbeResult:
    """What the kernel's neighbour table says about ``address`` (no capability needed):
    its ARP for IPv4, its Neighbour Discovery for IPv6 (kind ``nd``)."""
    from toolkit.sysinfo.routes import neighbour

    probe = ProbeSpec(address=address, kind=ProbeKind.ND if ":" in address else ProbeKind.ARP)
    what = "ND" if probe.kind is ProbeKind.ND else "ARP"
    n = None
    with best_effort(None, "neighbour table") as attempt:  # unreadable: a probe that did not run
        n = neighbour(address, interface)
    if attempt.error is not None:
        return probe.not_run(f"neighbour table not read: {attempt.error}")
    if n is None:
        return probe.not_run(f"no neighbour entry for {address} on {interface or 'any link'}")
    if n.alive:
        return probe.result(ProbeOutcome.REPLY, reply_from=address,
                            detail=f"neighbour table: {n.state} lladdr {n.lladdr or '?'} on {n.interface}")
    if n.alive is False:
        return probe.result(ProbeOutcome.SILENCE,
                            detail=f"neighbour table: {n.state} on {n.interface} (the kernel's {what} got no reply)")
    return probe.not_run(f"neighbour table: {n.state}")
