"""The addresses of this network namespace: which queries who-asked can ever attribute.

sock_diag answers for the caller's network namespace only (``sock_net(skb->sk)`` in
net/ipv4/inet_diag.c ``inet_diag_dump_one_icsk``/udp_diag.c ``udp_dump_one``), and a client
socket of this namespace sends from one of its own addresses. A query from any other source
(a node-level capture sees every pod's queries; a replayed file; traffic forwarded through
this namespace) has no socket here: looking it up costs two netlink round trips for a
certain miss. Measured with tcpreplay of 420k real query/answer packets at 20k packets/s:
210,006 such lookups, 1.6 s of CPU (scripts/benchmarks/capture_replay.py).

Not local: an address added during the capture is learned at the next refresh (at most
REFRESH_S later); until then its queries stay unattributed, never misattributed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

REFRESH_S = 1.0  # re-read the interfaces' addresses at most this often (getifaddrs: ~0.3 ms)
MAX_FILTER_ADDRESSES = 32  # more (an IPVS node holds every Service IP): no address test in BPF


def read_addresses() -> frozenset[str] | None:
    """This namespace's interface addresses (IPv6 without its %scope), or None when unknown."""
    try:
        import psutil  # lazy: the CLI's import time
    except ImportError:
        return None
    try:
        table = psutil.net_if_addrs()
    except OSError:
        return None
    out: set[str] = set()
    for addrs in table.values():
        for a in addrs:
            if a.family.name in ("AF_INET", "AF_INET6") and a.address:
                out.add(a.address.split("%", 1)[0])
    return frozenset(out)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 and ::1: local whatever the interfaces list (the kernel's local route)."""
    return address.startswith("127.") or address == "::1"


class LocalAddresses:
    """A membership test for "a socket of this namespace could have sent from here"."""

    def __init__(self, *, reader: Callable[[], frozenset[str] | None] = read_addresses,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reader, self.clock = reader, clock
        self.addresses = reader()
        self.read_at = clock()
        self.refreshes = 0

    def __contains__(self, address: object) -> bool:
        """True for a local address, or when the addresses are unknown (never skip then)."""
        if not isinstance(address, str):
            return False
        if self.addresses is None or address in self.addresses or is_loopback(address):
            return True
        now = self.clock()
        if now - self.read_at < REFRESH_S:
            return False
        self.read_at = now
        self.refreshes += 1
        self.addresses = self.reader()
        return self.addresses is None or address in self.addresses


def source_filter(addresses: frozenset[str] | None) -> str | None:
    """A tcpdump expression passing packets from these addresses (and loopback), or None when
    there are too many (or none known): the kernel then passes every source."""
    if not addresses or len(addresses) > MAX_FILTER_ADDRESSES:
        return None
    terms = [f"src host {a}" for a in sorted(addresses) if not is_loopback(a)]
    terms += ["src net 127.0.0.0/8", "src host ::1"]
    return " or ".join(terms)
