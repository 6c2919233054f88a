"""The streaming DNS analyzer: decoded events in, pairs, lookups and a summary out.

Pure: no sockets, no clock, no printing. Time is the capture time of the events, so the
same code serves a live capture and a pcap read back a year later. Memory is bounded by
configuration, never by the number of packets: pending queries expire (and are capped),
open search-list chains close after a quiet window (and are capped), only the last
``keep_lookups`` lookups and ``keep_evidence`` examples are kept, latency percentiles come
from a log-bucket histogram (exact samples only while there are few).

Results go two ways: ``sink`` receives each ``Pair``, ``Unanswered``, ``Retransmission``,
``Lookup``, ``IcmpSeen`` and ``Malformed`` as it happens (the CLI streams them), and
``summary()`` returns one frozen ``CaptureSummary`` at the end.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import reraise_bug
from toolkit.capture.decode import DnsEvent, IcmpEvent, Malformed, qtype_name, rcode_name

DEFAULT_TIMEOUT = 5.0  # glibc RES_TIMEOUT
QTYPE_A, QTYPE_AAAA = 1, 28
_AAAA_OR_A = (QTYPE_A, QTYPE_AAAA)
_TYPE_BIT = {QTYPE_A: 1, QTYPE_AAAA: 2}  # any other type: 4


@dataclass(frozen=True)
class AnalyzerConfig:
    timeout: float = DEFAULT_TIMEOUT  # the resolver timeout: no answer within it = unanswered
    # A and AAAA "sent together" from one socket. glibc hands both to one sendmmsg(), but the
    # kernel may defer the second packet's transmission behind the first one's softirq work
    # (ksoftirqd on a busy node): 7 ms apart was seen in the lab on a loaded machine.
    race_window: float = 0.02
    chain_window: float = 1.0  # quiet time after which a search-list chain is complete
    # A resolver retries an unanswered question only after its timeout (glibc RES_TIMEOUT,
    # Go's resolv.conf timeout, musl timeout/attempts = 2.5 s): the same question from the
    # same client sooner than this, with a new ID, is a concurrent lookup, not a retry.
    retry_after: float = 0.9
    search: tuple[str, ...] = ()  # the search list, when known (live in the pod)
    max_pending: int = 65_536
    max_open_chains: int = 8_192
    max_chains_per_client: int = 64
    keep_lookups: int = 200
    keep_evidence: int = 20
    max_servers: int = 512
    max_tc_waiting: int = 4_096
    exact_latency_samples: int = 2_048

    @property
    def expire_after(self) -> float:
        """A pending query is given up this long after its last send: long enough that the
        resolver's own retransmission after ``timeout`` still pairs with it."""
        return max(2.0 * self.timeout, self.timeout + 1.0)


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    name: str
    cmdline: str = ""


@dataclass(frozen=True, kw_only=True)
class Pair:
    """A query and its response."""

    ts: float  # first send of the query
    client: str
    client_port: int
    server: str
    server_port: int
    transport: str
    txid: int
    qname: str | None
    qtype: str
    rcode: str
    latency_ms: float  # from the first send (what tshark's dns.time measures)
    latency_last_ms: float  # from the last retransmission
    retransmissions: int
    answers: int
    addresses: tuple[str, ...] = ()
    tc: bool = False
    aa: bool = False
    late: bool = False  # answered after the resolver timeout: the client had given up


@dataclass(frozen=True)
class Unanswered:
    ts: float
    client: str
    client_port: int
    server: str
    server_port: int
    transport: str
    txid: int
    qname: str | None
    qtype: str
    sends: int
    waited_s: float
    reason: str  # timeout | capture-ended | evicted | txid-reused
    icmp: str | None = None  # ICMP error seen for it (kind)
    icmp_from: str | None = None
    explained_by: str | None = None  # "5s-signature" when its partner was answered


@dataclass(frozen=True)
class Retransmission:
    ts: float
    client: str
    client_port: int
    server: str
    server_port: int
    transport: str
    txid: int
    qname: str | None
    qtype: str
    attempt: int  # 2 for the first resend
    since_first_ms: float


@dataclass(frozen=True)
class IcmpSeen:
    ts: float
    sender: str
    to: str
    kind: str
    icmp_type: int
    icmp_code: int
    transport: str
    about: str  # "query" (to a server port) or "response" (to a client port)
    server: str
    server_port: int
    client: str
    client_port: int
    txid: int | None
    qname: str | None
    qtype: str | None
    matched: bool  # it quotes a query we saw


@dataclass(frozen=True)
class SignatureHit:
    """The 5-second signature, once: A/AAAA sent together, one answered, one resent."""

    ts: float
    client: str
    client_port: int
    server: str
    qname: str | None
    answered: str  # qtype answered at once
    lost: str  # qtype that had to be sent again
    answered_in_ms: float
    resent_after_s: float
    new_socket: bool


@dataclass(frozen=True)
class Lookup:
    """One application lookup: the candidates of one base name from one client."""

    ts: float
    client: str
    base: str
    candidates: tuple[str, ...]
    qtypes: tuple[str, ...]
    queries: int  # transactions sent (the amplification factor)
    retransmissions: int
    nxdomain: int
    nodata: int
    errors: int  # SERVFAIL, REFUSED, ...
    unanswered: int
    outcome: str  # answered | NXDOMAIN | NODATA | SERVFAIL ... | unanswered
    answered_name: str | None
    addresses: tuple[str, ...]
    duration_ms: float
    servers: tuple[str, ...]
    client_ports: tuple[int, ...]
    process: ProcessInfo | None = None

    __json_properties__ = ("amplification",)

    @property
    def amplification(self) -> int:
        return self.queries


@dataclass(frozen=True)
class ServerStats:
    server: str
    port: int
    queries: int
    responses: int
    unanswered: int
    retransmissions: int
    rcodes: dict[str, int]
    transports: tuple[str, ...]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    icmp: dict[str, int] = field(default_factory=dict)  # kind -> count, about queries to it
    icmp_senders: tuple[str, ...] = ()
    unanswered_explained: int = 0  # part of the 5-second signature
    unanswered_at_end: int = 0  # still inside the timeout when the capture ended

    @property
    def unanswered_unexplained(self) -> int:
        return self.unanswered - self.unanswered_explained - self.unanswered_at_end


@dataclass(frozen=True, kw_only=True)
class CaptureSummary:
    first_ts: float | None
    last_ts: float | None
    dns_messages: int
    queries: int  # query messages, retransmissions included (tshark's count)
    transactions: int  # distinct queries
    responses: int
    pairs: int
    unanswered: int
    unanswered_explained: int  # part of the 5-second signature
    retransmissions: int
    late_responses: int
    unmatched_responses: int
    malformed: int
    rcodes: dict[str, int]
    qtypes: dict[str, int]
    transports: dict[str, int]
    servers: tuple[ServerStats, ...]
    lookups_total: int
    lookups: tuple[Lookup, ...]  # the last keep_lookups
    lookups_with_search: int  # lookups that needed more than one candidate
    search_queries: int  # queries spent in those lookups
    search_nxdomain: int
    tc_responses: int
    tc_followed_by_tcp: int
    tc_not_followed: int
    signature_hits: int
    signature_examples: tuple[SignatureHit, ...]
    signature_lost_types: dict[str, int]
    icmp_errors: int
    icmp_examples: tuple[IcmpSeen, ...]
    unanswered_examples: tuple[Unanswered, ...]
    malformed_examples: tuple[Malformed, ...]
    evicted_pending: int
    timeout_s: float
    pending_at_cut: int = 0  # still waiting when a cut-short read stopped: not unanswered
    max_pending: int = 0  # the cap on pending queries (the memory bound; evicted beyond it)
    lookups_attributed: int = 0  # lookups whose process is known (live capture, who-asked)


# --------------------------------------------------------------------------- internals

class LatencyStats:
    """Count, max, and percentiles from a 2 %-wide log histogram (exact while small)."""

    __slots__ = ("count", "max", "hist", "exact", "_cap")
    _LOG = math.log(1.02)

    def __init__(self, exact_cap: int = 2048) -> None:
        self.count = 0
        self.max = 0.0
        self.hist: dict[int, int] = {}
        self.exact: list[float] | None = []
        self._cap = exact_cap

    def add(self, ms: float) -> None:
        ms = max(0.0, ms)  # the log histogram needs ms >= 0 (math.log domain)
        self.count += 1
        if ms > self.max:
            self.max = ms
        b = int(math.log(ms * 1000.0 + 1.0) / self._LOG)
        self.hist[b] = self.hist.get(b, 0) + 1
        ex = self.exact
        if ex is not None:
            if len(ex) < self._cap:
                ex.append(ms)
            else:
                self.exact = None

    def percentile(self, p: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(p * self.count))
        if self.exact is not None:
            return sorted(self.exact)[rank - 1]
        seen = 0
        for b in sorted(self.hist):
            seen += self.hist[b]
            if seen >= rank:
                return min(self.max, (math.exp((b + 0.5) * self._LOG) - 1.0) / 1000.0)
        return self.max


class _Server:
    __slots__ = ("queries", "responses", "unanswered", "explained", "retrans", "rcodes", "transports",
                 "lat", "icmp", "icmp_senders", "ended")

    def __init__(self, exact_cap: int) -> None:
        self.queries = self.responses = self.unanswered = self.retrans = self.explained = self.ended = 0
        self.rcodes: Counter = Counter()
        self.transports: set[str] = set()
        self.lat = LatencyStats(exact_cap)
        self.icmp: Counter = Counter()
        self.icmp_senders: set[str] = set()


class _Pending:
    __slots__ = ("key", "first", "last", "sends", "client", "cport", "server", "sport", "transport",
                 "txid", "qname", "qn", "qtype", "chain", "partner", "partner_answered_ms",
                 "icmp", "icmp_from", "sig_reported", "sig_followup", "answered_ms")

    def __init__(self, key, ts, ev: DnsEvent, qn) -> None:
        self.key = key
        self.first = self.last = ts
        self.sends = 1
        self.client, self.cport, self.server, self.sport = ev.src, ev.sport, ev.dst, ev.dport
        self.transport = ev.transport
        self.txid = ev.txid
        self.qname = ev.qname
        self.qn = qn
        self.qtype = ev.qtype
        self.chain: _Chain | None = None
        self.partner: _Pending | None = None
        self.partner_answered_ms: float | None = None
        self.icmp: str | None = None
        self.icmp_from: str | None = None
        self.sig_reported = False
        self.sig_followup = False
        self.answered_ms: float | None = None


class _Chain:
    __slots__ = ("id", "client", "base", "names", "qtypes", "first", "last", "queries", "retrans",
                 "nx", "nodata", "errors", "unanswered", "pending", "answered_name", "addresses",
                 "servers", "cports", "last_negative", "positive", "process", "last_rcode", "asked",
                 "cur_ports", "cur_types", "prev_types", "transport")

    def __init__(self, cid: int, client: str, base: tuple[str, ...], ts: float) -> None:
        self.id = cid
        self.client = client
        self.base = base
        self.names: list[str] = []
        self.qtypes: list[int] = []  # names only when the lookup is reported
        self.first = self.last = ts
        self.queries = self.retrans = self.nx = self.nodata = self.errors = self.unanswered = 0
        self.pending = 0
        self.answered_name: str | None = None
        self.addresses: tuple[str, ...] = ()
        self.servers: list[str] = []
        self.cports: list[int] = []
        self.last_negative = False
        self.positive = False
        self.process: ProcessInfo | None = None
        self.last_rcode: str | None = None
        # (name, qtype) -> the latest transaction that asked it: tells a retry from a new lookup
        self.asked: dict[tuple[str, int], _Pending] = {}
        self.cur_ports: set[int] = set()  # client ports of the current candidate's queries
        self.cur_types = 0  # qtypes asked for the current candidate (bits: _TYPE_BIT)
        self.prev_types = 0  # ... and for the one before it
        self.transport = "udp"


def _lcp(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


# --------------------------------------------------------------------------- analyzer

class Analyzer:
    """Feed it events in capture order; ``finish()`` at the end; ``summary()`` for results."""

    def __init__(self, config: AnalyzerConfig | None = None, *,
                 sink: Callable[[Any], None] | None = None,
                 who: Callable[[str, int, str], ProcessInfo | None] | None = None) -> None:
        self.cfg = cfg = config or AnalyzerConfig()
        self.sink = sink
        self.who = who
        self._search = tuple(s.strip(".").lower() for s in cfg.search if s.strip("."))
        self.pending: OrderedDict[tuple, _Pending] = OrderedDict()
        self.servers: dict[tuple[str, int], _Server] = {}
        self._other_server = _Server(cfg.exact_latency_samples)
        self.chains: OrderedDict[int, _Chain] = OrderedDict()  # open, by last activity
        self._blocked: dict[int, _Chain] = {}  # quiet but waiting on a pending query
        self._client_chains: dict[str, list[_Chain]] = {}
        self._chain_ids = 0
        self._cand_pos: dict[str, int] = {}  # candidate name -> its position in the walks seen
        self._by_name: dict[tuple[str, str], list[_Chain]] = {}  # (client, name) -> open chains that asked it
        self._negative: dict[str, list[_Chain]] = {}  # client -> open chains without a positive answer
        self._last_query_by_socket: OrderedDict[tuple, _Pending] = OrderedDict()
        self._waiting_partner: OrderedDict[tuple, _Pending] = OrderedDict()
        self.tc_waiting: OrderedDict[tuple, float] = OrderedDict()
        self.first_ts: float | None = None
        self.now = 0.0
        self._last_sweep = -1e18
        # counters
        self.dns_messages = self.queries = self.transactions = self.responses = self.pairs = 0
        self.unanswered = self.unanswered_explained = self.retransmissions = 0
        self.late = self.unmatched = self.malformed = 0
        self.rcodes: Counter = Counter()
        self.qtypes: Counter = Counter()
        self.transports: Counter = Counter()
        self.lookups_total = self.lookups_with_search = self.search_queries = self.search_nx = 0
        self.lookups_attributed = 0
        self.lookups: deque[Lookup] = deque(maxlen=cfg.keep_lookups)
        self.tc_responses = self.tc_followed = self.tc_not_followed = 0
        self.sig_hits = 0
        self.sig_examples: list[SignatureHit] = []
        self.sig_lost: Counter = Counter()
        self.icmp_errors = 0
        self.icmp_examples: list[IcmpSeen] = []
        self.unanswered_examples: list[Unanswered] = []
        self.malformed_examples: list[Malformed] = []
        self.evicted = 0
        self.pending_at_cut = 0
        self._finished = False

    # ------------------------------------------------------------------ entry points
    def feed(self, ev) -> None:
        ts = ev.ts
        if self.first_ts is None:
            self.first_ts = ts
        if ts > self.now:
            self.now = ts
        if ts - self._last_sweep >= 0.05:
            self.tick(ts)
        if type(ev) is DnsEvent:
            self.dns_messages += 1
            if ev.flags & 0x8000:
                self._response(ev, ts)
            else:
                self._query(ev, ts)
        elif type(ev) is IcmpEvent:
            self._icmp(ev, ts)
        elif type(ev) is Malformed:
            self.add_malformed(ev)

    def add_malformed(self, ev: Malformed) -> None:
        self.malformed += 1
        if len(self.malformed_examples) < self.cfg.keep_evidence:
            self.malformed_examples.append(ev)
        if self.sink:
            self.sink(ev)

    def tick(self, now: float) -> None:
        """Expire what is due at capture time ``now`` (live mode calls it when idle)."""
        if now > self.now:
            self.now = now
        self._last_sweep = now
        cfg = self.cfg
        pend = self.pending
        horizon = now - cfg.expire_after
        for _ in range(len(pend)):
            p = next(iter(pend.values()))
            if p.last > horizon:
                break
            self._expire(p, "timeout")
        horizon_tc = now - cfg.timeout
        tw = self.tc_waiting
        for _ in range(len(tw)):
            k, t = next(iter(tw.items()))
            if t > horizon_tc:
                break
            tw.popitem(last=False)
            self.tc_not_followed += 1
        chains = self.chains
        horizon_c = now - cfg.chain_window
        for _ in range(len(chains)):
            c = next(iter(chains.values()))
            if c.last > horizon_c:
                break
            if c.pending > 0:  # still waiting on a query: parked until it resolves
                chains.pop(c.id)
                self._blocked[c.id] = c
                continue
            self._close_chain(c)
        for d in (self._last_query_by_socket, self._waiting_partner):
            for _ in range(len(d)):
                k, p = next(iter(d.items()))
                if p.last > now - 3.0 * cfg.timeout:
                    break
                d.popitem(last=False)

    def finish(self, end_ts: float | None = None, *, cut_short: bool = False) -> None:
        """End of capture: everything still pending is unanswered, every chain closes.

        ``cut_short``: the reading stopped before the end of the evidence (a file read cut
        by --deadline or a signal): what is still pending was not seen unanswered, its answer
        may well be later in the file, so it is counted apart (``pending_at_cut``) and its
        lookup ends as "cut-short", never as unanswered."""
        if self._finished:
            return
        self._finished = True
        now = max(self.now, end_ts or 0.0)
        self.now = now
        self.tick(now)
        if cut_short:
            for _ in range(len(self.pending)):
                p = self.pending.popitem(last=False)[1]
                self.pending_at_cut += 1
                if p.partner is not None:
                    p.partner.partner = None
                    p.partner = None
                c = p.chain
                if c is not None:
                    c.pending -= 1
                    if not c.positive:
                        c.last_rcode = "cut-short"
        for _ in range(len(self.pending)):
            p = next(iter(self.pending.values()))
            waited = now - p.last
            self._expire(p, "timeout" if waited >= self.cfg.timeout else "capture-ended")
        self.tc_not_followed += len(self.tc_waiting)
        self.tc_waiting.clear()
        for c in list(self.chains.values()) + list(self._blocked.values()):
            self._close_chain(c)

    # ------------------------------------------------------------------ queries
    def _server(self, addr: str, port: int) -> _Server:
        key = (addr, port)
        s = self.servers.get(key)
        if s is None:
            if len(self.servers) >= self.cfg.max_servers:
                return self._other_server
            s = self.servers[key] = _Server(self.cfg.exact_latency_samples)
        return s

    def _query(self, ev: DnsEvent, ts: float) -> None:
        self.queries += 1
        qn = ev.qname.lower() if ev.qname else ""
        key = (ev.src, ev.sport, ev.dst, ev.dport, ev.transport, ev.txid)
        srv = self._server(ev.dst, ev.dport)
        srv.queries += 1
        srv.transports.add(ev.transport)
        followup = False
        old = self.pending.get(key)
        if old is not None:
            same = old.qn == qn and old.qtype == ev.qtype
            # Like tshark (dns.retransmission_timer): the same question again within the
            # timeout of the first send is a retransmission; later, a new transaction.
            if same and ts - old.first <= self.cfg.timeout:
                self._retransmit(old, ts, srv, new_socket=False)
                return
            if same and old.partner_answered_ms is not None:
                self._signature(old, ts, new_socket=False)
            followup = same and (old.sig_reported or old.sig_followup)
            self._expire(old, "resent" if same else "txid-reused")
        self.transactions += 1
        self.qtypes[qtype_name(ev.qtype)] += 1
        self.transports[ev.transport] += 1
        p = _Pending(key, ts, ev, qn)
        pend = self.pending
        pend[key] = p
        if len(pend) > self.cfg.max_pending:
            self._expire(next(iter(pend.values())), "evicted")
        # TC followed by a retry over TCP?
        if ev.transport == "tcp" and self.tc_waiting:
            tk = (ev.src, ev.dst, qn, ev.qtype)
            if self.tc_waiting.pop(tk, None) is not None:
                self.tc_followed += 1
        # A and AAAA from one socket within the race window
        sock = (ev.src, ev.sport, ev.transport)
        prev = self._last_query_by_socket.get(sock)
        if (prev is not None and prev.qtype != ev.qtype and prev.qtype in _AAAA_OR_A
                and ev.qtype in _AAAA_OR_A and prev.qn == qn and prev.partner is None
                and (ts - prev.first <= self.cfg.race_window
                     or (prev.answered_ms is None and ts - prev.first <= self.cfg.timeout
                         and prev.key in self.pending))):
            if prev.key in self.pending:
                prev.partner = p
                p.partner = prev
            elif prev.answered_ms is not None:
                # the capture delivered the twin's answer before this query (both directions
                # reach the packet socket independently): it is answered already
                p.partner_answered_ms = prev.answered_ms
        self._last_query_by_socket[sock] = p
        self._last_query_by_socket.move_to_end(sock)
        if len(self._last_query_by_socket) > self.cfg.max_pending:
            self._last_query_by_socket.popitem(last=False)
        # the same question, resent from a new socket, while its partner is long answered
        wk = (ev.src, qn, ev.qtype)
        waiting = self._waiting_partner.pop(wk, None)
        if waiting is not None and waiting is not old and waiting.key in self.pending:
            self._signature(waiting, ts, new_socket=True)
            followup = followup or waiting.sig_reported
        elif waiting is not None and waiting is old:
            followup = followup or waiting.sig_reported
        p.sig_followup = followup
        if p.partner_answered_ms is not None:
            self._waiting_partner[wk] = p
        self._chain_add(p, ev, qn, ts, prev)

    def _retransmit(self, p: _Pending, ts: float, srv: _Server, *, new_socket: bool) -> None:
        p.sends += 1
        p.last = ts
        self.pending.move_to_end(p.key)
        self.retransmissions += 1
        srv.retrans += 1
        if p.chain is not None:
            p.chain.retrans += 1
            p.chain.last = ts
        if p.partner_answered_ms is not None:
            self._signature(p, ts, new_socket=new_socket)
        if self.sink:
            self.sink(Retransmission(ts, p.client, p.cport, p.server, p.sport, p.transport, p.txid,
                                     p.qname, qtype_name(p.qtype), p.sends, (ts - p.first) * 1000.0))

    def _signature(self, p: _Pending, ts: float, *, new_socket: bool) -> None:
        if p.sig_reported or p.partner_answered_ms is None:
            return
        after = ts - p.first
        t = self.cfg.timeout
        if not (0.4 * t <= after <= 3.0 * t):
            return
        p.sig_reported = True
        self.sig_hits += 1
        lost = qtype_name(p.qtype)
        self.sig_lost[lost] += 1
        if len(self.sig_examples) < self.cfg.keep_evidence:
            self.sig_examples.append(SignatureHit(
                p.first, p.client, p.cport, p.server, p.qname,
                "A" if p.qtype == QTYPE_AAAA else "AAAA", lost, p.partner_answered_ms,
                after, new_socket))

    # ------------------------------------------------------------------ responses
    def _response(self, ev: DnsEvent, ts: float) -> None:
        self.responses += 1
        rc = rcode_name(ev.flags & 0xF)
        self.rcodes[rc] += 1
        key = (ev.dst, ev.dport, ev.src, ev.sport, ev.transport, ev.txid)
        p = self.pending.pop(key, None)
        srv = self._server(ev.src, ev.sport)
        srv.responses += 1
        srv.rcodes[rc] += 1
        tc = bool(ev.flags & 0x0200)
        if tc:
            self.tc_responses += 1
            if ev.transport == "udp":
                tw = self.tc_waiting
                tw[(ev.dst, ev.src, (ev.qname or "").lower(), ev.qtype)] = ts
                if len(tw) > self.cfg.max_tc_waiting:
                    tw.popitem(last=False)
                    self.tc_not_followed += 1
        elif ev.transport == "tcp" and self.tc_waiting:
            # the TCP answer to a truncated question is evidence of the retry over TCP even
            # when the capture missed (or filtered out) the TCP query itself
            if self.tc_waiting.pop((ev.dst, ev.src, (ev.qname or "").lower(), ev.qtype), None) is not None:
                self.tc_followed += 1
        if p is None:
            self.unmatched += 1
            return
        self.pairs += 1
        # Never negative: a live capture's kernel timestamps are taken per CPU, so on a busy
        # veth an answer can be stamped a few microseconds before its query (both are read
        # from one ring; a replayed pcap can do the same). Zero, not a negative latency.
        lat = max(0.0, (ts - p.first) * 1000.0)
        lat_last = max(0.0, (ts - p.last) * 1000.0)
        p.answered_ms = lat
        srv.lat.add(lat)
        late = lat_last > self.cfg.timeout * 1000.0
        if late:
            self.late += 1
        addrs = ev.addresses() if ev.ancount and p.qtype in (QTYPE_A, QTYPE_AAAA) else ()
        partner = p.partner
        if partner is not None:
            p.partner = partner.partner = None  # no reference cycles: nothing for the GC to chase
        if partner is not None and partner.key in self.pending and partner.partner_answered_ms is None:
            # this one is answered, its A/AAAA twin is not yet: watch for the resend
            partner.partner_answered_ms = lat
            wk = (partner.client, partner.qn, partner.qtype)
            self._waiting_partner[wk] = partner
            if len(self._waiting_partner) > self.cfg.max_pending:
                self._waiting_partner.popitem(last=False)
        c = p.chain
        if c is not None:
            c.pending -= 1
            c.last = ts
            c.last_rcode = rc
            if rc == "NXDOMAIN":
                c.nx += 1
                c.last_negative = True
            elif rc == "NOERROR":
                if ev.ancount:
                    if not c.positive:
                        self._unindex(self._negative, c.client, c)
                    c.positive = True
                    c.last_negative = False
                    if c.answered_name is None:
                        c.answered_name = p.qname
                    if addrs and len(c.addresses) < 16:
                        c.addresses = c.addresses + tuple(a for a in addrs if a not in c.addresses)[:16]
                else:
                    c.nodata += 1
                    c.last_negative = not c.positive
            else:
                c.errors += 1
                c.last_negative = not c.positive
        if self.sink:
            self.sink(Pair(
                ts=p.first, client=p.client, client_port=p.cport, server=p.server, server_port=p.sport,
                transport=p.transport, txid=p.txid, qname=p.qname, qtype=qtype_name(p.qtype), rcode=rc,
                latency_ms=lat, latency_last_ms=lat_last, retransmissions=p.sends - 1, answers=ev.ancount,
                addresses=addrs, tc=tc, aa=bool(ev.flags & 0x0400), late=late))
        if c is not None and c.pending <= 0:
            # Positive or not, the chain closes after chain_window of quiet (tick): the
            # capture may deliver the A answer before the AAAA query sent with it.
            self._unblock(c)

    def _expire(self, p: _Pending, reason: str) -> None:
        self.pending.pop(p.key, None)
        if p.partner is not None:
            p.partner.partner = None
            p.partner = None
        if reason == "evicted":
            self.evicted += 1
        self.unanswered += 1
        explained = None
        if p.partner_answered_ms is not None or p.sig_followup:
            explained = "5s-signature"
            self.unanswered_explained += 1
        srv = self.servers.get((p.server, p.sport)) or self._other_server
        srv.unanswered += 1
        if explained:
            srv.explained += 1
        elif reason == "capture-ended":
            srv.ended += 1
        c = p.chain
        if c is not None:
            c.pending -= 1
            c.unanswered += 1
            c.last_rcode = "unanswered"
            c.last_negative = not c.positive
            c.last = max(c.last, min(self.now, p.last + self.cfg.timeout))
            if c.pending <= 0:
                self._unblock(c)
        u = Unanswered(p.first, p.client, p.cport, p.server, p.sport, p.transport, p.txid, p.qname,
                       qtype_name(p.qtype), p.sends, self.now - p.first, reason, p.icmp, p.icmp_from,
                       explained)
        if len(self.unanswered_examples) < self.cfg.keep_evidence:
            self.unanswered_examples.append(u)
        if self.sink:
            self.sink(u)

    # ------------------------------------------------------------------ ICMP
    def _icmp(self, ev: IcmpEvent, ts: float) -> None:
        self.icmp_errors += 1
        about = "query"
        server, sport, client, cport = ev.q_dst, ev.q_dport, ev.q_src, ev.q_sport
        p = None
        # A quoted query goes from a client to a server port; a quoted response the other way.
        key = (ev.q_src, ev.q_sport, ev.q_dst, ev.q_dport, ev.transport, ev.txid)
        if ev.txid is not None:
            p = self.pending.get(key)
        if p is None and ev.txid is None:
            for cand in reversed(self.pending.values()):  # bounded by the pending cap; rare path
                if (cand.client, cand.cport, cand.server, cand.sport) == key[:4]:
                    p = cand
                    break
        if p is not None:
            p.icmp, p.icmp_from = ev.kind, ev.sender
        elif ev.q_sport == 53 and ev.q_dport != 53:
            about = "response"
            server, sport, client, cport = ev.q_src, ev.q_sport, ev.q_dst, ev.q_dport
        if about == "query":
            srv = self._server(server, sport)
            srv.icmp[ev.kind] += 1
            if len(srv.icmp_senders) < 8:
                srv.icmp_senders.add(ev.sender)
        seen = IcmpSeen(ts, ev.sender, ev.to, ev.kind, ev.icmp_type, ev.icmp_code, ev.transport, about,
                        server, sport, client, cport, ev.txid, ev.qname,
                        qtype_name(ev.qtype) if ev.qtype is not None else None, p is not None)
        if len(self.icmp_examples) < self.cfg.keep_evidence:
            self.icmp_examples.append(seen)
        if self.sink:
            self.sink(seen)

    # ------------------------------------------------------------------ search chains
    def _base_of(self, qn: str) -> tuple[str, ...]:
        labels = tuple(qn.split(".")) if qn and qn != "." else ()
        for s in self._search:
            if qn.endswith("." + s):
                return tuple(qn[: -len(s) - 1].split("."))
        return labels

    def _chain_add(self, p: _Pending, ev: DnsEvent, qn: str, ts: float, sib: _Pending | None = None) -> None:
        """Put a new transaction into the lookup (one resolver call) it belongs to.

        A lookup is one client's walk of the search list, candidate by candidate, until a
        positive answer or the last candidate's failure. What joins an open chain, best first:
        0. a question it asked already, sent again with the same ID from the same socket, or
           from a new one after a timeout (glibc resends both queries on the socket after its
           timeout, then from new sockets with the same IDs);
        1. a question it asked already whose answer is still missing, with a new ID from a new
           socket after the resolver's timeout (Go's pure resolver: one socket per exchange);
        2. the other type of its current candidate from the same socket (glibc, musl), then
        3. ... from another socket (Go, glibc ``single-request-reopen``);
        4. the next candidate, once every query of the current one failed.
        Anything else starts a new lookup: a repeated first candidate never joins a chain
        that asked it already, so the same name looked up twice (or by 20 threads at once)
        from one pod address gives one lookup per resolver call.
        """
        cfg = self.cfg
        qt = ev.qtype
        # Only two kinds of chain can take this query: those that asked this name already
        # (ranks 0-3) and those of this client still without a positive answer (rank 4).
        # Indexed, so a pod with a thousand walks open costs no more than one with two.
        chain = None
        rank = 5.0
        labels: tuple[str, ...] | None = None
        sc = sib.chain if sib is not None else None
        if (sc is not None and sib.qn == qn and sib.qtype != qt and sc.names and sc.names[-1] == qn
                and (qn, qt) not in sc.asked and sc.id in self.chains):
            # fast path, most queries: the other type of the candidate this socket just asked
            self.chains.move_to_end(sc.id)
            self._join(sc, p, qn, qt, 2.0, None, ts)
            return
        named = self._by_name.get((p.client, qn))
        neg = self._negative.get(p.client)
        if named or neg:
            for c in itertools.chain(reversed(named or ()), reversed(neg or ())):
                if ts - c.last > cfg.chain_window and c.pending <= 0:
                    continue
                prev = c.asked.get((qn, qt))
                if prev is not None:
                    if (prev.txid == ev.txid and prev.transport == ev.transport
                            and (prev.cport == p.cport or ts - prev.last >= cfg.retry_after)):
                        # (another socket must wait out a timeout: musl derives IDs from the
                        # clock and 20 threads draw 16-bit IDs, so equal IDs do occur)
                        r = 0
                    elif prev.answered_ms is None and ts - prev.last >= cfg.retry_after:
                        r = 1
                    else:
                        continue  # asked already: a concurrent or a later lookup's query
                elif c.names and qn == c.names[-1]:
                    r = 2 if p.cport in c.cur_ports else 3
                elif (not c.positive and c.pending <= 0 and c.last_negative and qn not in c.names
                      and c.cur_types & c.prev_types == c.prev_types):
                    if labels is None:
                        labels = self._base_of(qn)
                    if self._search:
                        if not labels or labels != c.base:
                            continue
                    elif not _lcp(labels, c.base):
                        continue
                    # Walks go through the search list in one order: a candidate seen before
                    # at position k continues a chain that has tried k candidates.
                    # A candidate never seen before is asked by the walk furthest along.
                    pos = self._cand_pos.get(qn)
                    if pos is None:
                        r = 4.0 - len(c.names) / 32.0
                    else:
                        r = 4.0 if pos == len(c.names) else 4.9
                    if c.cur_types in (1, 2):
                        r += 0.01  # only A or only AAAA so far: more likely still to come (Go)
                else:
                    continue
                # Ties: the chain that heard from the server last. A resolver sends its next
                # question right after the answer it waited for (tens of microseconds), so
                # among concurrent walks the one just answered is the one moving on.
                if r < rank or (r == rank and chain is not None and c.last > chain.last):
                    chain, rank = c, r
                    if r == 0:
                        break
        if (rank == 5.0 and sib is not None and sib.chain is not None and sib.qn == qn
                and sib.qtype != qt and sib.answered_ms is None and sib.key in self.pending
                and ts - sib.first <= cfg.race_window):
            # This socket's previous question (the other type of the same name, sent just
            # before) had joined another walk as its "other type from another socket"; now
            # that a second question comes from the same socket, it is a lookup of its own
            # (glibc and musl send A and AAAA together from one socket).
            self._detach(sib)
            labels = self._base_of(qn)
            chain = self._new_chain(sib, labels, ts)
            self._join(chain, sib, qn, sib.qtype, 5.0, labels, sib.first)
            rank = 2.0
        if chain is None:
            if labels is None:
                labels = self._base_of(qn)
            chain = self._new_chain(p, labels, ts)
        else:
            if chain.id in self.chains:
                self.chains.move_to_end(chain.id)
            if rank >= 3.5 and rank < 5.0 and not self._search:
                chain.base = _lcp(labels, chain.base)  # type: ignore[arg-type]
        self._join(chain, p, qn, qt, rank, labels, ts)

    def _new_chain(self, p: _Pending, labels: tuple[str, ...], ts: float) -> _Chain:
        cfg = self.cfg
        self._chain_ids += 1
        chain = _Chain(self._chain_ids, p.client, labels, ts)
        chain.transport = p.transport
        self.chains[chain.id] = chain
        self._negative.setdefault(p.client, []).append(chain)
        lst = self._client_chains.setdefault(p.client, [])
        lst.append(chain)
        if len(lst) > cfg.max_chains_per_client:
            self._close_chain(lst[0])
        if len(self.chains) + len(self._blocked) > cfg.max_open_chains:
            oldest = next(iter(self._blocked.values()), None) or next(iter(self.chains.values()))
            self._close_chain(oldest)
        return chain

    def _join(self, chain: _Chain, p: _Pending, qn: str, qt: int, rank: float, labels, ts: float) -> None:
        if ts > chain.last:
            chain.last = ts
        chain.pending += 1
        if rank <= 1:
            chain.retrans += 1  # the resolver asking again: not a new query of the lookup
        else:
            chain.queries += 1
        if (rank >= 3.5 and rank < 5.0) or not chain.names:
            chain.prev_types = chain.cur_types
            chain.cur_types = 0
            chain.cur_ports = set()
        chain.cur_types |= _TYPE_BIT.get(qt, 4)
        chain.cur_ports.add(p.cport)
        if len(chain.asked) < 64:
            chain.asked[(qn, qt)] = p
        if qn not in chain.names and len(chain.names) < 16:
            if qn not in self._cand_pos:
                if len(self._cand_pos) >= 4096:
                    self._cand_pos.clear()
                self._cand_pos[qn] = len(chain.names)
            chain.names.append(qn)
            self._by_name.setdefault((chain.client, qn), []).append(chain)
        if qt not in chain.qtypes and len(chain.qtypes) < 8:
            chain.qtypes.append(qt)
        if p.server not in chain.servers and len(chain.servers) < 8:
            chain.servers.append(p.server)
        if p.cport not in chain.cports and len(chain.cports) < 8:
            chain.cports.append(p.cport)
        p.chain = chain

    def _detach(self, p: _Pending) -> None:
        """Take a pending, unanswered query back out of the chain it joined."""
        c = p.chain
        p.chain = None
        if c is None:
            return
        c.pending -= 1
        c.queries -= 1
        if c.asked.get((p.qn, p.qtype)) is p:
            del c.asked[(p.qn, p.qtype)]
        c.cur_types &= ~_TYPE_BIT.get(p.qtype, 0)
        others = [q for q in c.asked.values() if q.cport == p.cport]
        if not others:
            c.cur_ports.discard(p.cport)
            if p.cport in c.cports:
                c.cports.remove(p.cport)
        if p.qtype in c.qtypes and not any(q.qtype == p.qtype for q in c.asked.values()):
            c.qtypes.remove(p.qtype)

    @staticmethod
    def _unindex(index: dict, key, c: _Chain) -> None:
        lst = index.get(key)
        if lst is not None:
            try:
                lst.remove(c)
            except ValueError:
                pass
            if not lst:
                del index[key]

    def _unblock(self, c: _Chain) -> None:
        if self._blocked.pop(c.id, None) is not None:
            self.chains[c.id] = c

    def _close_chain(self, c: _Chain) -> None:
        if self.chains.pop(c.id, None) is None and self._blocked.pop(c.id, None) is None:
            return
        lst = self._client_chains.get(c.client)
        if lst is not None:
            try:
                lst.remove(c)
            except ValueError:
                pass
            if not lst:
                del self._client_chains[c.client]
        for name in c.names:
            self._unindex(self._by_name, (c.client, name), c)
        if not c.positive:
            self._unindex(self._negative, c.client, c)
        c.asked.clear()  # chain -> transaction -> chain: break the cycle, refcounting frees both
        if self.who is not None and c.process is None:
            # Asked at the end, not the start: the socket watch has had the chain window to
            # resolve the lookup's sockets; any of its client ports names the process.
            for port in c.cports:
                try:
                    c.process = self.who(c.client, port, c.transport, c.first, c.last)
                except Exception as exc:  # noqa: BLE001 - best effort, never breaks the analysis
                    reraise_bug(exc)
                    c.process = None
                if c.process is not None:
                    self.lookups_attributed += 1
                    break
        if c.positive:
            outcome = "answered"
        elif c.last_rcode in (None, "unanswered"):
            outcome = "unanswered"
        elif c.last_rcode == "NOERROR":
            outcome = "NODATA"
        else:
            outcome = c.last_rcode
        base = ".".join(c.base) if c.base else "."
        lk = Lookup(c.first, c.client, base, tuple(c.names), tuple(qtype_name(t) for t in c.qtypes), c.queries, c.retrans, c.nx,
                    c.nodata, c.errors, c.unanswered, outcome, c.answered_name, c.addresses,
                    (c.last - c.first) * 1000.0, tuple(c.servers), tuple(c.cports), c.process)
        self.lookups_total += 1
        if len(c.names) > 1:
            self.lookups_with_search += 1
            self.search_queries += c.queries
            self.search_nx += c.nx
        self.lookups.append(lk)
        if self.sink:
            self.sink(lk)

    # ------------------------------------------------------------------ results
    def server_stats(self) -> tuple[ServerStats, ...]:
        out = []
        items = list(self.servers.items())
        if self._other_server.queries or self._other_server.responses:
            items.append((("other", 0), self._other_server))
        for (addr, port), s in sorted(items, key=lambda kv: -(kv[1].queries + kv[1].responses)):
            out.append(ServerStats(addr, port, s.queries, s.responses, s.unanswered, s.retrans,
                                   dict(s.rcodes), tuple(sorted(s.transports)),
                                   s.lat.percentile(0.5), s.lat.percentile(0.95),
                                   s.lat.max if s.lat.count else None, dict(s.icmp),
                                   tuple(sorted(s.icmp_senders)), s.explained, s.ended))
        return tuple(out)

    def summary(self) -> CaptureSummary:
        return CaptureSummary(
            first_ts=self.first_ts, last_ts=self.now if self.first_ts is not None else None,
            dns_messages=self.dns_messages, queries=self.queries, transactions=self.transactions,
            responses=self.responses, pairs=self.pairs, unanswered=self.unanswered,
            unanswered_explained=self.unanswered_explained, retransmissions=self.retransmissions,
            late_responses=self.late, unmatched_responses=self.unmatched, malformed=self.malformed,
            rcodes=dict(self.rcodes), qtypes=dict(self.qtypes), transports=dict(self.transports),
            servers=self.server_stats(), lookups_total=self.lookups_total, lookups=tuple(self.lookups),
            lookups_with_search=self.lookups_with_search, search_queries=self.search_queries,
            search_nxdomain=self.search_nx, tc_responses=self.tc_responses,
            tc_followed_by_tcp=self.tc_followed, tc_not_followed=self.tc_not_followed,
            signature_hits=self.sig_hits, signature_examples=tuple(self.sig_examples),
            signature_lost_types=dict(self.sig_lost), icmp_errors=self.icmp_errors,
            icmp_examples=tuple(self.icmp_examples), unanswered_examples=tuple(self.unanswered_examples),
            malformed_examples=tuple(self.malformed_examples), evicted_pending=self.evicted,
            timeout_s=self.cfg.timeout, pending_at_cut=self.pending_at_cut,
            max_pending=self.cfg.max_pending, lookups_attributed=self.lookups_attributed)
