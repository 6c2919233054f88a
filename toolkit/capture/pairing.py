"""Pairing: a query and its response, and the A/AAAA twins sent together.

A response answers the pending query with the mirrored addresses and ports, the same
transport and the same ID (``PendingKey``), as tshark's ``dns.response_to``. Around that
exact match this module keeps what the analyzer needs to see the 5-second signature
(glibc sends A and AAAA together from one socket; when the conntrack insert race drops
one, it is sent again after the resolver timeout while its twin is long answered), and
truncated UDP answers waiting for their retry over TCP (RFC 7766 5).

Every table here is an LRU ``OrderedDict`` capped by configuration.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container

from toolkit.capture.chains import Chain, PendingKey
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.decode import IcmpEvent
from toolkit.capture.dnswire import QTYPE_A, QTYPE_AAAA, DnsEvent, Transport, qtype_name
from toolkit.capture.records import SignatureHit
from toolkit.sockerr import NetError

_AAAA_OR_A = (QTYPE_A, QTYPE_AAAA)
SocketKey = tuple[str, int, Transport]  # client address, client port, transport
QuestionKey = tuple[str, str, int]  # client address, question name (lower case), qtype


class Pending:
    """A query waiting for its answer, with its A/AAAA twin and what was seen about it."""

    __slots__ = ("key", "first", "last", "sends", "client", "cport", "server", "sport", "transport",
                 "txid", "qname", "qn", "qtype", "qclass", "chain", "partner", "partner_answered_ms",
                 "icmp", "icmp_from", "sig_reported", "sig_followup", "answered_ms", "origin", "retried",
                 "carried", "carried_sends")

    def __init__(self, key: PendingKey, ts: float, ev: DnsEvent, qn: str) -> None:
        self.key = key
        self.first = self.last = ts
        # The question's first send, across the resends that became new transactions (the
        # same socket after the timeout, or a new socket: chains.ChainTracker links those):
        # how long the client has been waiting for this answer.
        self.origin = ts
        self.retried = False  # a later transaction took this question over: its fate decides
        self.carried = 0  # earlier transactions of this question on this socket, still undecided
        self.carried_sends = 0  # ... and how many times they were sent
        self.sends = 1
        self.client, self.cport, self.server, self.sport = ev.src, ev.sport, ev.dst, ev.dport
        self.transport = ev.transport
        self.txid = ev.txid
        self.qname = ev.qname
        self.qn = qn
        self.qtype = ev.qtype
        self.qclass = ev.qclass
        self.chain: Chain | None = None
        self.partner: Pending | None = None  # its A/AAAA twin, while both wait
        self.partner_answered_ms: float | None = None  # the twin was answered after this long
        self.icmp: NetError | None = None
        self.icmp_from: str | None = None
        self.sig_reported = False
        self.sig_followup = False  # a resend of a query already counted in the signature
        self.answered_ms: float | None = None


class Twins:
    """A and AAAA from one socket within the race window, and the twin left waiting.

    ``by_socket`` remembers each socket's last query (to pair the next one with it);
    ``waiting`` holds queries whose twin was answered, by client and question, so that a
    resend from a new socket (glibc after its timeout) is recognised as the same question.
    """

    def __init__(self, cfg: AnalyzerConfig, pending: Container[PendingKey]) -> None:
        self.cfg = cfg
        self.pending = pending
        self.by_socket: OrderedDict[SocketKey, Pending] = OrderedDict()
        self.waiting: OrderedDict[QuestionKey, Pending] = OrderedDict()

    def pair(self, p: Pending, ts: float) -> Pending | None:
        """Link ``p`` with the query its socket sent just before, when that one is its
        A/AAAA twin; returns that previous query (twin or not)."""
        cfg = self.cfg
        sock = (p.client, p.cport, p.transport)
        prev = self.by_socket.get(sock)
        if (prev is not None and prev.qtype != p.qtype and prev.qtype in _AAAA_OR_A
                and p.qtype in _AAAA_OR_A and prev.qn == p.qn and prev.partner is None
                and (ts - prev.first <= cfg.race_window
                     or (prev.answered_ms is None and ts - prev.first <= cfg.timeout
                         and prev.key in self.pending))):
            if prev.key in self.pending:
                prev.partner = p
                p.partner = prev
            elif prev.answered_ms is not None:
                # the capture delivered the twin's answer before this query (both directions
                # reach the packet socket independently): it is answered already
                p.partner_answered_ms = prev.answered_ms
        by_socket = self.by_socket
        by_socket[sock] = p
        by_socket.move_to_end(sock)
        if len(by_socket) > cfg.max_pending:
            by_socket.popitem(last=False)
        return prev

    def wait(self, p: Pending) -> None:
        """``p``'s twin is answered: watch for ``p`` being sent again."""
        self.waiting[(p.client, p.qn, p.qtype)] = p

    def answered(self, p: Pending, latency_ms: float) -> None:
        """``p`` was answered: its twin, still waiting, is watched for its resend."""
        partner = p.partner
        if partner is None:
            return
        p.partner = partner.partner = None  # no reference cycles: nothing for the GC to chase
        if partner.key in self.pending and partner.partner_answered_ms is None:
            partner.partner_answered_ms = latency_ms
            self.wait(partner)
            if len(self.waiting) > self.cfg.max_pending:
                self.waiting.popitem(last=False)

    def sweep(self, now: float) -> None:
        """Forget queries older than three resolver timeouts (no resend comes that late)."""
        horizon = now - 3.0 * self.cfg.timeout
        for d in (self.by_socket, self.waiting):
            for _ in range(len(d)):
                p = next(iter(d.values()))
                if p.last > horizon:
                    break
                d.popitem(last=False)


def unlink(p: Pending) -> None:
    """``p`` stops waiting: its twin no longer points at it."""
    if p.partner is not None:
        p.partner.partner = None
        p.partner = None


def signature(p: Pending, ts: float, timeout: float, *, new_socket: bool) -> SignatureHit | None:
    """The 5-second signature, when ``p`` (whose twin was answered) is sent again at ``ts``:
    about one resolver timeout after its first send (0.4 to 3 timeouts: glibc, musl and Go
    time out differently). Reported once per query."""
    answered_ms = p.partner_answered_ms
    if p.sig_reported or answered_ms is None:
        return None
    after = ts - p.first
    if not (0.4 * timeout <= after <= 3.0 * timeout):
        return None
    p.sig_reported = True
    return SignatureHit(ts=p.first, client=p.client, client_port=p.cport, server=p.server, qname=p.qname,
                        answered="A" if p.qtype == QTYPE_AAAA else "AAAA", lost=qtype_name(p.qtype),
                        answered_in_ms=answered_ms, resent_after_s=after, new_socket=new_socket)


TcKey = tuple[str, str, str, int]  # client, server, question name (lower case), qtype


class TruncationWatch:
    """Truncated (TC) UDP answers waiting for the client's retry over TCP."""

    def __init__(self, cfg: AnalyzerConfig) -> None:
        self.cfg = cfg
        self.waiting: OrderedDict[TcKey, float] = OrderedDict()

    def truncated(self, key: TcKey, ts: float) -> int:
        """A TC answer at ``ts``; returns how many older ones it or the cap ends unfollowed:
        the same question truncated again over UDP means the last TC answer was not
        followed (musl before 1.2.4 asks again on each call and never over TCP)."""
        tw = self.waiting
        gone = 1 if tw.pop(key, None) is not None else 0
        tw[key] = ts
        if len(tw) > self.cfg.max_tc_waiting:
            tw.popitem(last=False)
            gone += 1
        return gone

    def followed(self, key: TcKey) -> bool:
        """A TCP query (or answer) for ``key``: True when a TC answer was waiting for it."""
        return self.waiting.pop(key, None) is not None

    def expire(self, now: float) -> int:
        """Give up on TC answers older than the resolver timeout; returns how many."""
        horizon = now - self.cfg.timeout
        tw = self.waiting
        gone = 0
        for _ in range(len(tw)):
            if next(iter(tw.values())) > horizon:
                break
            tw.popitem(last=False)
            gone += 1
        return gone

    def clear(self) -> int:
        """The end of the capture: every TC answer still waiting was not followed."""
        n = len(self.waiting)
        self.waiting.clear()
        return n


def quoted_query(pending: OrderedDict[PendingKey, Pending], ev: IcmpEvent) -> Pending | None:
    """The pending query an ICMP error quotes (a quote too short for the DNS ID: the
    newest query between the same sockets)."""
    # A quoted query goes from a client to a server port; a quoted response the other way.
    if ev.txid is not None:
        return pending.get((ev.q_src, ev.q_sport, ev.q_dst, ev.q_dport, ev.transport, ev.txid))
    sockets = (ev.q_src, ev.q_sport, ev.q_dst, ev.q_dport)
    for cand in reversed(pending.values()):  # bounded by the pending cap; rare path
        if (cand.client, cand.cport, cand.server, cand.sport) == sockets:
            return cand
    return None
