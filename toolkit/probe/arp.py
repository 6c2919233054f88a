"""ARP for an on-link address: who-has on an AF_PACKET socket (NET_RAW), or, unprivileged,
what the kernel's own ARP concluded (the neighbour table, read after the TCP/ICMP probes
made the kernel resolve the address).

Why our own who-has are short: the kernel resolves an address with 3 broadcasts 1 s apart
(net.ipv4.neigh.*.mcast_solicit = 3, retrans_time_ms = 1000), so a SYN to a dead on-link
address fails only after ~3 s. A host that holds the address answers a who-has from its
kernel's softirq, in well under a millisecond on a LAN, so we send SOLICIT_COUNT who-has
SOLICIT_INTERVAL apart, in parallel with the kernel's own resolution (our SYN/echo start
it), and conclude "nobody holds it" SOLICIT_INTERVAL after the last one: ~0.6 s instead of
~3 s. For comparison RFC 5227 2.1.1 spaces its conflict probes 1-2 s apart (PROBE_MIN,
PROBE_MAX) because it must hear a host that may itself be booting; we ask a host that is
supposed to be serving. The evidence that replaces the kernel's timer is therefore: N
unanswered who-has of our own, plus the kernel's neighbour entry for the address read at
that moment (INCOMPLETE while its own resolution runs, FAILED once it gave up; an entry
that says the neighbour is alive overrides our silence and the probe reports it).
Without NET_RAW nothing of this runs: the kernel's timer decides (``neighbour_probe``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from toolkit.errors import best_effort
from toolkit.probe import packets
from toolkit.probe.model import ProbeKind, ProbeOutcome, ProbeResult, ProbeSpec
from toolkit.probe.receive import Matcher, Resend, ms_since, receive

ARP_INTERVAL = 1.0  # arping's default: one request a second (kept for callers that ask for it)
SOLICIT_INTERVAL = 0.2  # our own who-has / Neighbor Solicitations: see the module docstring
SOLICIT_COUNT = 3  # as many as the kernel's mcast_solicit and RFC 4861's MAX_MULTICAST_SOLICIT
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


def arp_probe(address: str, interface: str, source: str, end: float, *, requests: int = SOLICIT_COUNT,
              interval: float = SOLICIT_INTERVAL) -> ProbeResult:
    """Up to ``requests`` who-has ``interval`` apart until a reply, ``interval`` after the
    last one, or ``end`` (monotonic); silence is checked against the kernel's neighbour entry
    (``concluded``).

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
                        count=requests, interval=interval, start=t0)
        listeners = [(sock, _arp_matcher(probe, interface, t0))]
        return concluded(probe, interface, lambda until: receive(listeners, until, probe, resend=resend), t0, end,
                         resend, ("ARP reply", "who-has"))
    finally:
        sock.close()


def concluded(probe: ProbeSpec, interface: str, listen: Callable[[float], ProbeResult | None], t0: float,
              end: float, resend: Resend, what: tuple[str, str]) -> ProbeResult:
    """Listen until ``interval`` after our last solicitation; silent, ask the kernel's
    neighbour entry for the address (the second witness). INCOMPLETE, FAILED or no entry:
    silence now. An entry that says the neighbour lives (REACHABLE, STALE, ...) disagrees
    with our silence, so the probe listens on until ``end`` as it did before it was fast
    (the kernel's unicast re-probes of a STALE entry are answered to us and seen here)."""
    fast_end = min(end, resend.start + resend.count * resend.interval)
    res = listen(fast_end)
    if res is not None:
        return res
    heard = f"no {what[0]} to {resend.sent} {what[1]} {resend.interval * 1000:.0f} ms apart on {interface}"
    table = neighbour_probe(probe.address, interface)
    if table.result is not ProbeOutcome.REPLY or fast_end >= end:
        return probe.result(ProbeOutcome.SILENCE, privileged=True,
                            detail=f"{heard} in {time.monotonic() - t0:.1f} s; {table.detail}")
    res = listen(end)
    if res is not None:
        return res
    return probe.result(ProbeOutcome.SILENCE, privileged=True,
                        detail=f"{heard} in {time.monotonic() - t0:.1f} s (waited on: {table.detail} at "
                               f"{fast_end - t0:.1f} s)")


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
