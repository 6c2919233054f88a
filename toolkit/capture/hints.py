"""Who-asked's early signal beside the TPACKET_V3 ring: a packet socket for outgoing queries only.

The ring hands frames over a block at a time, up to ``retire_blk_tov`` after they arrived
(ring.py); glibc and musl close a lookup's socket about 0.3 ms after the answer (measured in
the lab: with the ring alone who-asked found none of static musl's sockets, p50 1.8 ms from
packet to look). who-asked must look while the socket is open (whoasked.py), so it keeps a
wake-up per query: a second cooked AF_PACKET socket whose kernel filter passes only packets
TO a DNS port (queries; answers come FROM it) and TCP segments to it (a TCP socket is open
from its SYN). Only the first 128 bytes of each are read: enough for the IPv4/IPv6 and UDP/TCP
headers. The ring keeps the data path; at high query rates this is a syscall per query again,
beside who-asked's own sock_diag request per query: only for queries from this namespace's
own addresses (the filter tests the source, localaddrs.py).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from toolkit.dns.transport import Transport

HINT_SNAP = 128
HINT_BATCH = 256  # queries handed to who-asked per ring wake-up
HINT_RCVBUF = 1 << 20  # a late hint is useless (the socket closed): let the kernel drop old ones
_AF4, _AF6 = socket.AF_INET, socket.AF_INET6
_PORTS = struct.Struct("!HH")
SawQuery = Callable[[str, int, str, int, Transport, float, "int | None", bool, bool], None]
Opener = Callable[[str], socket.socket]
Attach = Callable[[socket.socket, str], tuple[bool, str | None]]


def hint_filter(ports: tuple[int, ...], sources: str | None = None) -> str:
    """Packets to a DNS port, UDP or TCP (tcpdump syntax, compiled by libpcap); with
    ``sources`` (localaddrs.source_filter) only those from this namespace's addresses: who-asked
    skips the others anyway (no socket of ours sent them), and in the kernel they cost no
    wake-up and no recv (a node-level capture sees every pod's queries)."""
    to_dns = " or ".join(f"udp dst port {p} or tcp dst port {p}" for p in sorted(set(ports) | {53}))
    return to_dns if sources is None else f"({to_dns}) and ({sources})"


def parse(data: bytes) -> tuple[str, int, str, int, Transport, int | None] | None:
    """(source, source port, destination, destination port, transport, DNS ID) of an
    IPv4/IPv6 packet whose next header is UDP or TCP; None otherwise (IPv6 extension headers:
    not followed). The DNS ID (the first two bytes after the 8-byte UDP header, RFC 1035
    4.1.1) is None for TCP (its messages need the stream) and for a cut-short datagram."""
    if len(data) < 20:
        return None
    version = data[0] >> 4
    if version == 4:
        off, proto = (data[0] & 0x0F) * 4, data[9]
        src, dst = socket.inet_ntop(_AF4, data[12:16]), socket.inet_ntop(_AF4, data[16:20])
    elif version == 6 and len(data) >= 40:
        off, proto = 40, data[6]
        src, dst = socket.inet_ntop(_AF6, data[8:24]), socket.inet_ntop(_AF6, data[24:40])
    else:
        return None
    if proto not in (socket.IPPROTO_UDP, socket.IPPROTO_TCP) or len(data) < off + 4:
        return None
    sport, dport = _PORTS.unpack_from(data, off)
    if proto == socket.IPPROTO_TCP:
        return src, sport, dst, dport, Transport.TCP, None
    txid = int.from_bytes(data[off + 8:off + 10], "big") if len(data) >= off + 10 else None
    return src, sport, dst, dport, Transport.UDP, txid


class QueryHints:
    """The outgoing-query socket and its non-blocking reader."""

    def __init__(self, interface: str, ports: tuple[int, ...], opener: Opener, attach: Attach,
                 sources: str | None = None) -> None:
        """Open and filter the socket (``opener``/``attach`` are live.py's); OSError or
        CannotObserve when it cannot be had, ValueError when the filter did not attach."""
        self.sock = opener(interface)
        try:
            attached, why = attach(self.sock, hint_filter(ports, sources))
            if not attached:
                raise ValueError(why or "no kernel filter")
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, HINT_RCVBUF)
            while True:  # what arrived before the filter: not ours
                try:
                    self.sock.recv(1)
                except OSError:
                    break
        except BaseException:
            self.sock.close()
            raise
        self.fd = self.sock.fileno()
        self.behind = False  # the last read stopped at its limit: queries are still queued

    def read(self, saw: SawQuery, now: Callable[[], float], limit: int = HINT_BATCH) -> int:
        """Hand up to ``limit`` queued queries' addresses to ``saw`` (who-asked); how many
        were read. Bounded so who-asked never starves the ring (profiled at 60k queries/s:
        an unbounded read took half the reader's time and the ring dropped two thirds).

        Read before the ring's frames of the same wake-up, a hint is looked up before the
        ring hands over its query's answer (whoasked.py judges the look by that answer). After
        a read that stopped at ``limit``, the queued rest may be older than frames the ring
        has handed over since, answers included: those looks are passed as ``late`` (they
        stand only if an answer still comes after them)."""
        recv = self.sock.recv
        late = self.behind
        n = 0
        while n < limit:
            try:
                data = recv(HINT_SNAP)
            except OSError:  # BlockingIOError: none left (or an error: the ring goes on)
                break
            n += 1
            got = parse(data)
            if got is not None:
                src, sport, dst, dport, transport, txid = got
                saw(src, sport, dst, dport, transport, now(), txid, False, late)
        self.behind = n >= limit
        return n

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
