"""The one receive loop of the raw probes: SYN (IPv4 and IPv6), ICMP echo, ARP and ND.

A raw socket sees every packet of its protocol that reaches this network namespace, not only
the answer to our probe. ``receive`` reads whatever arrives on the probe's sockets and hands
each packet to that socket's matcher (one per probe kind: "is this the SYN-ACK / the ICMP
error quoting our SYN / the ARP reply for the address?") until one recognises the answer,
the window ends, or MAX_PACKETS were examined (a busy link cannot keep a probe busy
forever). Waits are slices of at most ``signals.TICK_S`` (0.2 s), so SIGINT/SIGTERM end a
probe within one slice: it is then ``not-run`` (it observed nothing), never ``silence``.

ARP and ND repeat their request while they listen (``Resend``): three times like the kernel's
own resolution (RFC 4861 10: MAX_MULTICAST_SOLICIT 3), but 0.2 s apart instead of its
RETRANS_TIMER 1 s (toolkit.probe.arp's docstring says why).

The unprivileged probes (a connect(), the ICMP datagram socket) have one connected socket
whose answer the kernel has already matched: ``watch`` polls it in the same slices and asks
the probe what each wake-up means.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Sequence

from toolkit import signals
from toolkit.probe.model import ProbeResult, ProbeSpec

MAX_PACKETS = 100_000  # bound on packets examined per attempt (raw sockets see all traffic)
BUFSIZE = 65535

# (packet as the socket returned it, its sender as recvfrom() names it) -> the probe's
# answer, or None for someone else's packet. The sender is an IP address (an IPv6 zone
# "%eth0" removed) on IP sockets, the interface name on AF_PACKET sockets.
Matcher = Callable[[bytes, str], "ProbeResult | None"]


def ms_since(t0: float) -> float:
    """Milliseconds since the monotonic time ``t0`` (a probe's round-trip time)."""
    return (time.monotonic() - t0) * 1000.0


class Resend:
    """A request sent again every ``interval`` seconds from ``start``, ``count`` times in all
    (the first at once); ``sent`` says how many went out."""

    def __init__(self, send: Callable[[], object], *, count: int, interval: float, start: float) -> None:
        self._send = send
        self.count = count
        self.interval = interval
        self.start = start
        self.sent = 0

    def due(self, now: float) -> None:
        """Send the next request if its time has come."""
        if self.sent < self.count and now >= self.start + self.sent * self.interval:
            self._send()
            self.sent += 1

    def next_at(self, end: float) -> float:
        """When the next request is due (``end`` once all were sent)."""
        return self.start + self.sent * self.interval if self.sent < self.count else end


def receive(listeners: Sequence[tuple[socket.socket, Matcher]], end: float, probe: ProbeSpec, *,
            resend: Resend | None = None) -> ProbeResult | None:
    """Read the non-blocking ``listeners`` until a matcher returns the answer (returned), the
    monotonic time ``end`` or MAX_PACKETS (None: the probe met silence, the caller says
    what it waited for), or SIGINT/SIGTERM (``probe``'s not-run result)."""
    socks = [s for s, _ in listeners]
    seen = 0
    while seen < MAX_PACKETS:
        if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
            return probe.not_run(signals.cut_detail())
        now = time.monotonic()
        if now >= end:
            break
        if resend is not None:
            resend.due(now)
        until = resend.next_at(end) if resend is not None else end
        ready, _, _ = select.select(socks, [], [], signals.tick(max(0.0, min(end, until) - time.monotonic())))
        for sock, match in listeners:  # nothing ready: the slice ended, look at the stop flag
            while sock in ready and seen < MAX_PACKETS:
                try:
                    data, addr = sock.recvfrom(BUFSIZE)
                except (BlockingIOError, InterruptedError):
                    break
                seen += 1
                res = match(data, str(addr[0]).split("%")[0])
                if res is not None:
                    return res
    return None


def watch(sock: socket.socket, events: int, end: float, probe: ProbeSpec,
          news: Callable[[], ProbeResult | None], *, rounds: int = MAX_PACKETS) -> ProbeResult | None:
    """Poll one connected socket for ``events`` until ``news()`` (called at each wake-up)
    returns the answer (returned), the monotonic time ``end`` or ``rounds`` wake-ups (None:
    silence), or SIGINT/SIGTERM (``probe``'s not-run result)."""
    poller = select.poll()
    poller.register(sock, events)
    for _ in range(rounds):
        if signals.stopped():  # SIGINT/SIGTERM: not observed, never "silence"
            return probe.not_run(signals.cut_detail())
        left = end - time.monotonic()
        if left <= 0:
            break
        if not poller.poll(max(1, int(signals.tick(left) * 1000))):
            continue  # the slice ended: look at the stop flag, wait on
        res = news()
        if res is not None:
            return res
    return None
