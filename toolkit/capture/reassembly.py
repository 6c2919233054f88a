"""TCP/IP reassembly for DNS: TCP segments into DNS messages, IP fragments into datagrams.

TCP DNS (RFC 1035 4.2.2 / RFC 7766): each message carries a two-byte length prefix; a
message may span segments and a segment may hold several messages. ``TcpReassembler``
keeps one bounded buffer per flow (LRU-capped number of flows, idle expiry).

IP fragments (RFC 791, RFC 8200 4.5): DNS answers larger than the path MTU arrive in
pieces; ``IpReassembler`` puts them back together, bounded in datagrams and time.

Both are bounded by configuration, never by the traffic, and neither raises on packet
content: damage is reported back to the decoder as a reason string.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_TCP_FLOWS = 4096
MAX_TCP_BUFFER = 65535 + 2 + 1500  # one maximal message plus a segment
TCP_FLOW_IDLE_S = 120.0
MAX_IP_DATAGRAM = 65535

TCP_SYN = 0x02
TCP_FIN_RST = 0x05  # FIN or RST: the flow ends

FlowKey = tuple[str, int, str, int]  # src, sport, dst, dport
FragmentKey = tuple[int, str, str, bytes, int]  # IP version, src, dst, identification, protocol


class _Flow:
    __slots__ = ("next_seq", "buf", "last")

    def __init__(self, next_seq: int, last: float) -> None:
        self.next_seq = next_seq
        self.buf = b""
        self.last = last


class TcpReassembler:
    """RFC 1035 4.2.2 framing per TCP flow, bounded in flows and bytes."""

    def __init__(self, max_flows: int = MAX_TCP_FLOWS, idle_s: float = TCP_FLOW_IDLE_S) -> None:
        self.flows: OrderedDict[FlowKey, _Flow] = OrderedDict()
        self.max_flows = max_flows
        self.idle_s = idle_s
        self.evicted = 0
        self.gaps = 0
        self.duplicates = 0
        self._last_sweep = 0.0

    def segment(self, key: FlowKey, ts: float, seq: int, tcp_flags: int, payload: bytes) -> list[bytes] | str:
        """Feed one segment; returns the complete messages (possibly none), or a string
        describing damage (the flow is reset)."""
        flows = self.flows
        flow = flows.get(key)
        fin_rst = tcp_flags & TCP_FIN_RST
        if tcp_flags & TCP_SYN:
            flow = _Flow((seq + 1) & 0xFFFFFFFF, ts)
            flows[key] = flow
            flows.move_to_end(key)
            self._cap()
            if not payload:
                return []
            seq = (seq + 1) & 0xFFFFFFFF  # data on a SYN (TCP Fast Open) follows its sequence number
        if not payload:
            if fin_rst and flow is not None:
                flows.pop(key, None)
            return []
        if flow is None:  # capture started mid-connection: take this segment as a start
            flow = _Flow(seq, ts)
            flows[key] = flow
            self._cap()
        else:
            flows.move_to_end(key)
        flow.last = ts
        damage = None
        if seq != flow.next_seq:
            aligned, damage = self._align(flow, seq, payload)
            if aligned is None:  # all of it seen already
                if fin_rst:
                    flows.pop(key, None)
                return []
            payload = aligned
        out, oversize = self._messages(flow, payload)
        if fin_rst:
            flows.pop(key, None)
        damage = oversize or damage
        if damage and not out:
            return damage
        return out

    def _align(self, flow: _Flow, seq: int, payload: bytes) -> tuple[bytes | None, str | None]:
        """A segment out of order: the new part of a retransmission or an overlap (None when
        there is none), or, after a gap, this segment as the new start (and the damage)."""
        diff = (seq - flow.next_seq) & 0xFFFFFFFF
        if diff >= 0x80000000:  # behind (sequence numbers wrap: RFC 793 3.3)
            behind = 0x100000000 - diff
            if behind >= len(payload):
                self.duplicates += 1
                return None, None
            return payload[behind:], None
        # ahead: a segment is missing; resynchronise here
        self.gaps += 1
        damage = f"TCP gap of {diff} bytes: {len(flow.buf)} buffered bytes dropped"
        flow.buf = b""
        flow.next_seq = seq
        return payload, damage

    @staticmethod
    def _messages(flow: _Flow, payload: bytes) -> tuple[list[bytes], str | None]:
        """Append ``payload`` to the flow and cut the complete length-prefixed messages out."""
        buf = flow.buf + payload if flow.buf else payload
        flow.next_seq = (flow.next_seq + len(payload)) & 0xFFFFFFFF
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= 2:  # bounded: every turn consumes >= 2 bytes
            ln = (buf[pos] << 8) | buf[pos + 1]
            if n - pos - 2 < ln:
                break
            if ln:
                out.append(buf[pos + 2:pos + 2 + ln])
            pos += 2 + ln
        rest = buf[pos:] if pos else buf
        damage = None
        if len(rest) > MAX_TCP_BUFFER:
            rest = b""
            damage = "TCP DNS message longer than any valid one: flow buffer dropped"
        flow.buf = rest
        return out, damage

    def _cap(self) -> None:
        while len(self.flows) > self.max_flows:
            self.flows.popitem(last=False)
            self.evicted += 1

    def sweep(self, now: float) -> None:
        """Drop flows idle for longer than ``idle_s`` (oldest first; bounded)."""
        if now - self._last_sweep < 1.0:
            return
        self._last_sweep = now
        flows = self.flows
        for _ in range(len(flows)):
            _key, flow = next(iter(flows.items()))
            if now - flow.last <= self.idle_s:
                break
            flows.popitem(last=False)


# Fragments one datagram may have before it is given up: a 64 KiB datagram over the IPv6
# minimum MTU (1280) is 52 of them; 8-byte pieces, possible on paper, are an attack.
MAX_FRAGMENTS = 1024


@dataclass(slots=True)
class _Datagram:
    """The pieces of one datagram so far, kept sorted by offset and never overlapping, so
    that completeness is one comparison (the bytes held against the total) instead of a
    walk over the pieces at every fragment."""

    first: float
    starts: list[int] = field(default_factory=list)  # sorted offsets
    parts: dict[int, bytes] = field(default_factory=dict)
    total: int = -1
    have: int = 0


class IpReassembler:
    """IPv4/IPv6 fragments -> the whole transport payload (what tshark reassembles).

    DNS answers larger than the path MTU (DNSSEC, big TXT, many A records without EDNS
    truncation) arrive fragmented; the event's time is the last fragment's, as tshark's.
    Bounded: at most ``max_pending`` datagrams of at most 64 KiB and MAX_FRAGMENTS pieces,
    dropped after ``idle_s``; the work per fragment is a binary search and a list insert.
    Overlapping fragments drop their datagram, as Linux does (RFC 5722 for IPv6; IPv4 since
    the FragmentSmack fix, CVE-2018-5391, net/ipv4/inet_fragment.c inet_frag_queue_insert:
    IPFRAG_OVERLAP discards the queue); an exact repeat of a piece is ignored (IPFRAG_DUP).
    """

    def __init__(self, max_pending: int = 256, idle_s: float = 30.0) -> None:
        self.pending: OrderedDict[FragmentKey, _Datagram] = OrderedDict()
        self.max_pending = max_pending
        self.idle_s = idle_s
        self.done = self.expired = self.overlapping = 0

    def add(self, key: FragmentKey, ts: float, offset: int, more: bool, data: bytes) -> bytes | None:
        """One fragment; returns the whole datagram once every piece is in, else None."""
        dg = self.pending.pop(key, None)
        if dg is None or ts - dg.first > self.idle_s:
            if dg is not None:
                self.expired += 1
            dg = _Datagram(first=ts)
        end = offset + len(data)
        if end > MAX_IP_DATAGRAM or len(dg.starts) >= MAX_FRAGMENTS:
            self.expired += 1
            return None
        verdict = self._place(dg, offset, end, more, data)
        if verdict == "duplicate":
            self._keep(key, dg)
            return None
        if verdict is not None:  # the datagram is dropped (not put back in pending)
            if verdict == "overlap":
                self.overlapping += 1
            else:
                self.expired += 1
            return None
        if dg.total >= 0 and dg.have == dg.total:
            self.done += 1
            return b"".join(dg.parts[o] for o in dg.starts)
        self._keep(key, dg)
        return None

    @staticmethod
    def _place(dg: _Datagram, offset: int, end: int, more: bool, data: bytes) -> str | None:
        """Put the piece in DG: None when placed, "duplicate" for an exact repeat (DG kept),
        "overlap" or "inconsistent" when the datagram is to be dropped."""
        i = bisect.bisect_left(dg.starts, offset)
        if i < len(dg.starts) and dg.starts[i] == offset and len(dg.parts[offset]) == len(data):
            return "duplicate"
        if (i > 0 and dg.starts[i - 1] + len(dg.parts[dg.starts[i - 1]]) > offset) or \
                (i < len(dg.starts) and dg.starts[i] < end):
            return "overlap"
        total = end if not more else dg.total
        last_end = dg.starts[-1] + len(dg.parts[dg.starts[-1]]) if dg.starts else 0
        if (not more and dg.total >= 0 and dg.total != end) or (total >= 0 and max(end, last_end) > total):
            return "inconsistent"
        dg.starts.insert(i, offset)
        dg.parts[offset] = data
        dg.have += len(data)
        dg.total = total
        return None

    def _keep(self, key: FragmentKey, dg: _Datagram) -> None:
        self.pending[key] = dg
        while len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)
            self.expired += 1
