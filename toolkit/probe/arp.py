"""ARP for an on-link address: who-has on an AF_PACKET socket (NET_RAW), or, unprivileged,
what the kernel's own ARP concluded (the neighbour table, read after the TCP/ICMP probes
made the kernel resolve the address)."""

from __future__ import annotations

import select
import socket
import time

from toolkit import signals
from toolkit.errors import reraise_bug
from toolkit.probe import packets
from toolkit.probe.model import ProbeKind, ProbeOutcome, ProbeResult

ARP_INTERVAL = 1.0  # arping's default: one request a second
MAX_PACKETS = 100_000


def _sysfs(interface: str, name: str) -> str | None:
    if "/" in interface or interface in (".", ".."):
        return None
    try:
        with open(f"/sys/class/net/{interface}/{name}", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def arp_probe(address: str, interface: str, source: str, end: float, *, requests: int = 3) -> ProbeResult:
    """Up to ``requests`` who-has one second apart until a reply or ``end`` (monotonic).

    Needs NET_RAW (PermissionError escapes). Interfaces without ARP (not Ethernet, or
    NOARP like a tun/wireguard link) give ``not-run``."""
    hw_type = _sysfs(interface, "type")
    mac = _sysfs(interface, "address")
    flags = _sysfs(interface, "flags")
    if hw_type != "1" or not mac or (flags and int(flags, 16) & 0x80):  # ARPHRD_ETHER, IFF_NOARP
        return ProbeResult(
            address=address, kind=ProbeKind.ARP, port=None, result=ProbeOutcome.NOT_RUN, privileged=True,
            detail=f"{interface} does not use ARP (type {hw_type}, flags {flags})")
    sender_mac = bytes.fromhex(mac.replace(":", ""))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(packets.ETH_P_ARP))
    try:
        sock.bind((interface, packets.ETH_P_ARP))
        sock.setblocking(False)
        request = packets.arp_request(sender_mac, source, address)
        t0 = time.monotonic()
        sent = 0
        seen = 0
        while seen < MAX_PACKETS:
            if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
                return ProbeResult(address=address, kind="arp", port=None, result="not-run", detail=signals.cut_detail())
            now = time.monotonic()
            if now >= end:
                break
            if sent < requests and now >= t0 + sent * ARP_INTERVAL:
                sock.sendto(request, (interface, packets.ETH_P_ARP, 0, 1, b"\xff" * 6))
                sent += 1
            next_send = t0 + sent * ARP_INTERVAL if sent < requests else end
            wait = max(0.0, min(end, next_send) - time.monotonic())
            if not select.select([sock], [], [], signals.tick(wait))[0]:
                continue
            while seen < MAX_PACKETS:
                try:
                    data = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                seen += 1
                reply = packets.parse_arp_reply(data)
                if reply is not None and reply.sender_ip == address:
                    return ProbeResult(
                        address=address, kind=ProbeKind.ARP, port=None, result=ProbeOutcome.REPLY,
                        reply_from=address, rtt_ms=(time.monotonic() - t0) * 1000.0, privileged=True,
                        detail=f"is-at {reply.sender_mac} on {interface}")
        return ProbeResult(
            address=address, kind=ProbeKind.ARP, port=None, result=ProbeOutcome.SILENCE, privileged=True,
            detail=f"no ARP reply to {sent} who-has on {interface} in {time.monotonic() - t0:.1f} s")
    finally:
        sock.close()


def neighbour_probe(address: str, interface: str | None) -> ProbeResult:
    """What the kernel's neighbour table says about ``address`` (no capability needed):
    its ARP for IPv4, its Neighbour Discovery for IPv6 (kind ``nd``)."""
    from toolkit.sysinfo.routes import neighbour

    kind = ProbeKind.ND if ":" in address else ProbeKind.ARP
    what = "ND" if kind is ProbeKind.ND else "ARP"
    try:
        n = neighbour(address, interface)
    except Exception as exc:  # noqa: BLE001 - an unreadable table is a probe that did not run
        reraise_bug(exc)
        return ProbeResult(
            address=address, kind=kind, port=None, result=ProbeOutcome.NOT_RUN,
            detail=f"neighbour table not read: {exc}")
    if n is None:
        return ProbeResult(
            address=address, kind=kind, port=None, result=ProbeOutcome.NOT_RUN,
            detail=f"no neighbour entry for {address} on {interface or 'any link'}")
    if n.alive:
        return ProbeResult(
            address=address, kind=kind, port=None, result=ProbeOutcome.REPLY, reply_from=address,
            detail=f"neighbour table: {n.state} lladdr {n.lladdr or '?'} on {n.interface}")
    if n.alive is False:
        return ProbeResult(
            address=address, kind=kind, port=None, result=ProbeOutcome.SILENCE,
            detail=f"neighbour table: {n.state} on {n.interface} (the kernel's {what} got no reply)")
    return ProbeResult(
        address=address, kind=kind, port=None, result=ProbeOutcome.NOT_RUN,
        detail=f"neighbour table: {n.state}")
