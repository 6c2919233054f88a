"""The streaming DNS analyzer: decoded events in, pairs, lookups and a summary out.

Pure: no sockets, no clock, no printing. Time is the capture time of the events, so the
same code serves a live capture and a pcap read back a year later. Memory is bounded by
configuration, never by the number of packets: pending queries are capped (never expired
by time: an answer 11 s late still pairs with its query, as tshark pairs it), open
search-list chains close after a quiet window (and are capped), only the last
``keep_lookups`` lookups and ``keep_evidence`` examples are kept, latency percentiles come
from a log-bucket histogram (exact samples only while there are few).

A response pairs with the pending query that has its mirrored addresses, ports, transport
and ID *and* its question (name, type, class), as glibc's res_queriesmatch demands; one
with another question is a ``Mismatch``, never paired. A question resent after the
timeout (a new transaction, as tshark counts it) carries its first send along (``origin``),
so the histogram and the late answers measure what the client waited; the transaction it
replaced is decided by its successor's fate, never counted as lost on its own.

The analyzer runs the per-packet sequence; the concepts live beside it: ``pairing`` (a
query and its response, A/AAAA twins, truncation), ``chains`` (search-list walks into
lookups), ``counters`` (the totals), ``records`` (the results).

Results go two ways: ``sink`` receives each ``Pair``, ``Unanswered``, ``Retransmission``,
``Lookup``, ``IcmpSeen``, ``Mismatch`` and ``Malformed`` as it happens (the CLI streams
them), and ``summary()`` returns one frozen ``CaptureSummary`` at the end.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable

from toolkit.capture.chains import ChainTracker, PendingKey, WhoAsks
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.counters import NEVER, Counters, Evidence, ServerTally, histogram
from toolkit.capture.decode import DNS_PORT, Event, IcmpEvent, Malformed
from toolkit.capture.dnswire import (FLAG_AA, FLAG_QR, FLAG_TC, QTYPE_A, QTYPE_AAAA, TCP, UDP, DnsEvent, ResponseInfo,
                                     qtype_name, rcode_name)
from toolkit.capture.othername import SearchAnswers
from toolkit.capture.pairing import Pending, TruncationWatch, Twins, quoted_query, signature, unlink
from toolkit.capture.records import (CaptureSummary, Explanation, IcmpAbout, IcmpSeen, Lookup, LookupOutcome,
                                     Mismatch, Pair, Retransmission, ServerStats, Unanswered, UnansweredReason,
                                     BUCKET_BOUNDS_MS)

_AAAA_OR_A = (QTYPE_A, QTYPE_AAAA)
SWEEP_EVERY_S = 0.05  # capture time between two sweeps of the bounded tables
_ERROR_OUTCOMES = frozenset(("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", str(LookupOutcome.MALFORMED)))
Result = Pair | Unanswered | Retransmission | Lookup | IcmpSeen | Mismatch | Malformed
Sink = Callable[[Result], None]


def _lookup_tally(n: Counters, evidence: Evidence, sink: Sink | None,
                  answers: SearchAnswers) -> Callable[[Lookup], None]:
    """What happens to each completed lookup: counted, kept as evidence, streamed."""
    def done(lk: Lookup) -> None:
        n.lookups_total += 1
        answers.seen(lk)
        n.outcomes[str(lk.outcome)] += 1
        if lk.process is not None:
            n.lookups_attributed += 1
        if len(lk.candidates) > 1:
            n.lookups_with_search += 1
            n.search_queries += lk.queries
            n.search_nx += lk.nxdomain
        if str(lk.outcome) in _ERROR_OUTCOMES or str(lk.outcome).startswith("BAD"):
            evidence.add(evidence.failed_lookups, lk)
        evidence.lookups.append(lk)
        if sink:
            sink(lk)
    return done


def _sum_rcodes(servers: tuple[ServerStats, ...]) -> dict[str, int]:
    """The distinct answered queries by rcode, all servers."""
    total: dict[str, int] = {}
    for srv in servers:
        for k, v in srv.answer_rcodes.items():
            total[k] = total.get(k, 0) + v
    return total


def _same_question(p: Pending, ev: DnsEvent) -> bool:
    """glibc's res_queriesmatch: as many questions, the same name (case-insensitive), type
    and class. A query without a question matches a response without one."""
    if p.qname is None:
        return ev.qdcount == 0
    if ev.qdcount != 1 or ev.qtype != p.qtype or ev.qclass != p.qclass:
        return False
    return ev.qname == p.qname or (ev.qname is not None and ev.qname.lower() == p.qn)


class Analyzer:
    """Feed it events in capture order; ``finish()`` at the end; ``summary()`` for results."""

    def __init__(self, config: AnalyzerConfig | None = None, *, sink: Sink | None = None,
                 who: WhoAsks | None = None) -> None:
        self.cfg = cfg = config or AnalyzerConfig()
        self.sink = sink
        self.pending: OrderedDict[PendingKey, Pending] = OrderedDict()
        # Recently answered queries (to tell a server's repeated answer from a stray one), in
        # two generations: the older is dropped whole when the newer is full or 3 timeouts old.
        self.answered: dict[PendingKey, float] = {}
        self._answered_old: dict[PendingKey, float] = {}
        self._answered_since = -1e18
        self.servers: dict[tuple[str, int], ServerTally] = {}
        self._other_server = ServerTally(cfg.exact_latency_samples)
        self.counts = Counters()
        self.evidence = Evidence(keep=cfg.keep_evidence, lookups=deque(maxlen=cfg.keep_lookups))
        # The tracker's callback must not hold the analyzer: a cycle (analyzer -> tracker ->
        # bound method -> analyzer) keeps the whole state (65k pending queries, their chains)
        # alive after the run until a full GC pass, which then takes ~0.35 s wherever it
        # happens to run (after a --deadline cut: past the deadline).
        self.search_answers = SearchAnswers()
        self.chains = ChainTracker(cfg, self.pending,
                                   _lookup_tally(self.counts, self.evidence, sink, self.search_answers), who)
        self.twins = Twins(cfg, self.pending)
        self.tc = TruncationWatch(cfg)
        self.first_ts: float | None = None
        self.now = 0.0
        self._last_sweep = -1e18
        self._finished = False

    # ------------------------------------------------------------------ entry points
    def feed(self, ev: Event) -> None:
        """One decoded event, in capture order."""
        ts = ev.ts
        if self.first_ts is None:
            self.first_ts = ts
        if ts > self.now:
            self.now = ts
        if ts - self._last_sweep >= SWEEP_EVERY_S:
            self.tick(ts)
        if type(ev) is DnsEvent:
            self.counts.dns_messages += 1
            if ev.flags & FLAG_QR:
                self._response(ev, ts)
            else:
                self._query(ev, ts)
        elif type(ev) is IcmpEvent:
            self._icmp(ev, ts)
        elif type(ev) is Malformed:
            self.add_malformed(ev)

    def add_malformed(self, ev: Malformed) -> None:
        """A packet or capture record that could not be decoded."""
        self.counts.malformed += 1
        self.evidence.add(self.evidence.malformed, ev)
        if self.sink:
            self.sink(ev)

    def add_malformed_count(self, n: int) -> None:
        """``n`` more damaged records whose reasons were not kept (the reader's cap)."""
        self.counts.malformed += max(0, n)

    def tick(self, now: float) -> None:
        """Close what is due at capture time ``now`` (live mode calls it when idle). Pending
        queries are not expired by time: a late answer still pairs (the memory cap bounds
        them); chains, truncated answers and the twins' tables are."""
        if now > self.now:
            self.now = now
        self._last_sweep = now
        self.counts.tc_not_followed += self.tc.expire(now)
        self.chains.tick(now)
        self.twins.sweep(now)
        if now - self._answered_since > 3.0 * self.cfg.timeout:
            self._rotate_answered(now)

    def _rotate_answered(self, now: float) -> None:
        self._answered_old = self.answered
        self.answered = {}
        self._answered_since = now

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
                self.counts.pending_at_cut += 1
                unlink(p)
                if p.chain is not None:
                    self.chains.cut_short(p.chain)
        for _ in range(len(self.pending)):
            p = next(iter(self.pending.values()))
            waited = now - p.last
            self._expire(p, UnansweredReason.TIMEOUT if waited >= self.cfg.timeout
                         else UnansweredReason.CAPTURE_ENDED)
        self.counts.tc_not_followed += self.tc.clear()
        self.chains.close_all()

    # ------------------------------------------------------------------ queries
    def _server(self, addr: str, port: int) -> ServerTally:
        key = (addr, port)
        s = self.servers.get(key)
        if s is None:
            if len(self.servers) >= self.cfg.max_servers:
                return self._other_server
            s = self.servers[key] = ServerTally(self.cfg.exact_latency_samples)
        return s

    def _query(self, ev: DnsEvent, ts: float) -> None:
        n = self.counts
        n.queries += 1
        qn = ev.qname.lower() if ev.qname else ""
        key = (ev.src, ev.sport, ev.dst, ev.dport, ev.transport, ev.txid)
        srv = self._server(ev.dst, ev.dport)
        srv.queries += 1
        srv.transports.add(ev.transport)
        pend = self.pending
        old = pend.get(key)
        p = Pending(key, ts, ev, qn)
        followup = False
        if old is not None:
            if old.qn == qn and old.qtype == ev.qtype and ts - old.first <= self.cfg.timeout:
                self._retransmit(old, ts, srv)
                return
            followup = self._reasked(old, p, ts)
        n.transactions += 1
        srv.transactions += 1
        n.qtypes[ev.qtype] += 1
        n.transports[ev.transport] += 1
        pend[key] = p
        if len(pend) > self.cfg.max_pending:
            self._evict()
        # TC followed by a retry over TCP?
        if ev.transport == TCP and self.tc.waiting and self.tc.followed((ev.src, ev.dst, qn, ev.qtype)):
            n.tc_followed += 1
        twins = self.twins
        prev = twins.pair(p, ts)  # A and AAAA from one socket within the race window
        # the same question, resent from a new socket, while its partner is long answered
        waiting = twins.waiting.pop((ev.src, qn, ev.qtype), None) if twins.waiting else None
        if waiting is not None:
            if waiting is old:
                followup = followup or waiting.sig_reported
            elif waiting.key in pend:
                self._signature(waiting, ts, new_socket=True)
                followup = followup or waiting.sig_reported
        p.sig_followup = followup
        if p.partner_answered_ms is not None:
            twins.wait(p)
        self.chains.add(p, qn, ts, prev)

    def _reasked(self, old: Pending, p: Pending, ts: float) -> bool:
        """The socket sent ``old``'s ID again, after the timeout (tshark's retransmission
        timer): a new transaction ``p``. The same question carries the wait along; another
        question closes ``old`` (the ID was reused). Returns whether ``p`` follows up a
        5-second signature already counted."""
        if old.qn != p.qn or old.qtype != p.qtype:
            self._expire(old, UnansweredReason.TXID_REUSED)
            return False
        if old.partner_answered_ms is not None:
            self._signature(old, ts, new_socket=False)
        old.retried = True
        p.origin, p.carried, p.carried_sends = old.origin, old.carried + 1, old.carried_sends + old.sends
        self._expire(old, UnansweredReason.RESENT)
        return old.sig_reported or old.sig_followup

    def _evict(self) -> None:
        """The pending cap (the memory bound): the oldest query stops waiting. One that
        waited its timeout already is as unanswered as at the end; a younger one is counted
        apart (``evicted_pending``: the unanswered count is then an upper bound)."""
        p = next(iter(self.pending.values()))
        late = self.now - p.last >= self.cfg.timeout
        self._expire(p, UnansweredReason.TIMEOUT if late else UnansweredReason.EVICTED)

    def _retransmit(self, p: Pending, ts: float, srv: ServerTally) -> None:
        p.sends += 1
        p.last = ts
        self.pending.move_to_end(p.key)
        self.counts.retransmissions += 1
        srv.retrans += 1
        if p.chain is not None:
            self.chains.resent(p.chain, ts)
        if p.partner_answered_ms is not None:
            self._signature(p, ts, new_socket=False)
        if self.sink:
            self.sink(Retransmission(ts=ts, client=p.client, client_port=p.cport, server=p.server,
                                     server_port=p.sport, transport=p.transport, txid=p.txid, qname=p.qname,
                                     qtype=qtype_name(p.qtype), attempt=p.sends,
                                     since_first_ms=(ts - p.first) * 1000.0))

    def _signature(self, p: Pending, ts: float, *, new_socket: bool) -> None:
        hit = signature(p, ts, self.cfg.timeout, new_socket=new_socket)
        if hit is None:
            return
        self.counts.sig_hits += 1
        self.counts.sig_lost[hit.lost] += 1
        self.evidence.add(self.evidence.signatures, hit)

    # ------------------------------------------------------------------ responses
    def _response(self, ev: DnsEvent, ts: float) -> None:
        n = self.counts
        n.responses += 1
        key = (ev.dst, ev.dport, ev.src, ev.sport, ev.transport, ev.txid)
        p = self.pending.get(key)
        srv = self._server(ev.src, ev.sport)
        srv.responses += 1
        matched = p is not None and ((ev.qname == p.qname and ev.qtype == p.qtype and ev.qclass == p.qclass
                                      and ev.qdcount == 1) or _same_question(p, ev))
        info = None
        if ev.records:  # the extended rcode lives in the OPT record; the addresses in the answers
            info = ev.inspect(addresses=matched and p is not None and p.qtype in _AAAA_OR_A)
            rcode = info.rcode
        else:
            rcode = ev.flags & 0xF
        n.rcodes[rcode] += 1
        srv.rcodes[rcode] += 1
        tc = bool(ev.flags & FLAG_TC)
        if tc or (ev.transport == TCP and self.tc.waiting):
            self._truncation(ev, ts, tc)
        if p is None:
            if key in self.answered or key in self._answered_old:
                n.duplicates += 1  # the server answered a resend too (tshark: a retransmitted response)
                srv.duplicates += 1
            else:
                n.unmatched += 1
            return
        if not matched:
            self._mismatch(p, ev, ts, rcode)
            return
        del self.pending[key]
        self._pair(p, ev, ts, rcode, info, srv)

    def _mismatch(self, p: Pending, ev: DnsEvent, ts: float, rcode: int) -> None:
        """An answer for another question on a query's socket and ID: possible spoofing or a
        broken middlebox. Not paired; the query keeps waiting for its own answer."""
        n = self.counts
        n.unmatched += 1
        n.mismatched += 1
        m = Mismatch(ts=ts, client=p.client, client_port=p.cport, server=p.server, server_port=p.sport,
                     transport=p.transport, txid=p.txid, asked=p.qname, asked_type=qtype_name(p.qtype),
                     answered=ev.qname, answered_type=qtype_name(ev.qtype) if ev.qdcount else "-",
                     rcode=rcode_name(rcode), addresses=ev.inspect(limit=8).addresses if ev.qname else ())
        self.evidence.add(self.evidence.mismatches, m)
        if self.sink:
            self.sink(m)

    def _pair(self, p: Pending, ev: DnsEvent, ts: float, rcode: int, info: ResponseInfo | None,
              srv: ServerTally) -> None:
        n = self.counts
        n.pairs += 1
        # Never negative: a live capture's kernel timestamps are taken per CPU, so on a busy
        # veth an answer can be stamped a few microseconds before its query (both are read
        # from one ring; a replayed pcap can do the same). Zero, not a negative latency.
        lat = (ts - p.first) * 1000.0
        if lat < 0.0:
            lat = 0.0
        waited = (ts - p.origin) * 1000.0 if p.origin != p.first else lat
        if waited < 0.0:
            waited = 0.0
        p.answered_ms = lat
        srv.lat.add(lat)
        srv.answer_rcodes[rcode] += 1  # (the run's total is the servers' sum)
        answered = self.answered
        answered[p.key] = ts
        if len(answered) > self.cfg.max_pending:
            self._rotate_answered(ts)
        late = waited > self.cfg.timeout * 1000.0
        if late:
            self._late(p, rcode, waited, srv)
        if not p.retried:  # the question's answer (a retried transaction's question is its successor's)
            # the bucket (records.BUCKET_BOUNDS_MS), compared inline: most waits are short
            b = (0 if waited < 1.0 else 1 if waited < 10.0 else 2 if waited < 100.0 else
                 bisect_right(BUCKET_BOUNDS_MS, waited))
            srv.hist[b] += 1
        damage = None
        addrs: tuple[str, ...] = ()
        if info is not None:
            damage = info.damage if ev.ancount else None
            if damage:
                n.malformed_answers += 1
            else:
                addrs = info.addresses
        if p.partner is not None:
            self.twins.answered(p, lat)  # its A/AAAA twin, unanswered yet, is watched for the resend
        if p.chain is not None:
            self.chains.answered(p.chain, rcode, ev.ancount if not damage else 0, p.qname, addrs, ts,
                                 malformed=damage is not None)
        if not (self.sink or late or damage):
            return  # the record is built only for a reader: most pairs have none
        pair = Pair(
            ts=p.first, client=p.client, client_port=p.cport, server=p.server, server_port=p.sport,
            transport=p.transport, txid=p.txid, qname=p.qname, qtype=qtype_name(p.qtype), rcode=rcode_name(rcode),
            latency_ms=lat, latency_last_ms=max(0.0, (ts - p.last) * 1000.0), retransmissions=p.sends - 1,
            answers=ev.ancount, addresses=addrs, tc=bool(ev.flags & FLAG_TC), aa=bool(ev.flags & FLAG_AA),
            late=late, waited_ms=waited, malformed_answer=damage, sends=p.sends + p.carried_sends)
        if late and not (p.partner_answered_ms is not None or p.sig_followup):
            self.evidence.add(self.evidence.late, pair)
        if damage:
            self.evidence.add(self.evidence.malformed_answers, pair)
        if self.sink:
            self.sink(pair)

    def _late(self, p: Pending, rcode: int, waited: float, srv: ServerTally) -> None:
        n = self.counts
        n.late += 1
        srv.late += 1
        if p.partner_answered_ms is not None or p.sig_followup:
            n.late_signature += 1  # the 5-second signature's resend: the race, not a slow server
        else:
            n.late_rcodes[rcode] += 1
            n.late_max_ms = max(n.late_max_ms, waited)
            n.late_min_ms = min(n.late_min_ms, waited)

    def _truncation(self, ev: DnsEvent, ts: float, tc: bool) -> None:
        key = (ev.dst, ev.src, (ev.qname or "").lower(), ev.qtype)
        if tc:
            self.counts.tc_responses += 1
            if ev.transport == UDP:
                self.counts.tc_not_followed += self.tc.truncated(key, ts)
        elif self.tc.followed(key):
            # the TCP answer to a truncated question is evidence of the retry over TCP even
            # when the capture missed (or filtered out) the TCP query itself
            self.counts.tc_followed += 1

    def _expire(self, p: Pending, reason: UnansweredReason) -> None:
        """``p`` stops waiting without an answer: counted (as tshark counts it), and judged."""
        n = self.counts
        self.pending.pop(p.key, None)
        unlink(p)
        n.unanswered += 1
        n.reasons[reason] += 1
        srv = self.servers.get((p.server, p.sport)) or self._other_server
        srv.unanswered += 1
        srv.reasons[reason] += 1
        explained = None
        if p.partner_answered_ms is not None or p.sig_followup:
            explained = Explanation.SIGNATURE
            n.unanswered_explained += 1
            srv.explained += 1
        if reason == UnansweredReason.CAPTURE_ENDED:
            srv.ended += 1
        elif reason == UnansweredReason.EVICTED:
            n.evicted += 1
        self._judge(p, reason, explained is not None, srv)
        u = Unanswered(ts=p.first, client=p.client, client_port=p.cport, server=p.server, server_port=p.sport,
                       transport=p.transport, txid=p.txid, qname=p.qname, qtype=qtype_name(p.qtype), sends=p.sends,
                       waited_s=self.now - p.first, reason=reason, icmp=p.icmp, icmp_from=p.icmp_from,
                       explained_by=explained)
        self.evidence.add(self.evidence.unanswered, u)
        if self.sink:
            self.sink(u)

    def _judge(self, p: Pending, reason: UnansweredReason, explained: bool, srv: ServerTally) -> None:
        """What an unanswered transaction says about its server, its question and its lookup.

        Lost (the evidence against the server): no answer although the client waited the
        timeout, unexplained by the signature. A transaction resent on its own socket is
        judged with its successor (a late answer to the resend answers both: the server
        cannot tell them apart); one taken over from another socket is judged alone, but its
        question belongs to the successor."""
        if reason == UnansweredReason.RESENT:
            if p.chain is not None:
                self.chains.superseded(p.chain)  # the successor joins the lookup in its place
                p.chain = None
            return  # judged with the successor (Pending.carried)
        waited_out = reason == UnansweredReason.TIMEOUT or (
            reason == UnansweredReason.TXID_REUSED and self.now - p.last >= self.cfg.timeout)
        if not explained and waited_out:
            srv.lost += 1
        if p.retried:
            return
        if not explained and waited_out:
            srv.lost += p.carried  # the earlier sends of this question were never answered either
        ended = reason == UnansweredReason.CAPTURE_ENDED
        if not ended:
            srv.hist[NEVER] += 1
        if p.chain is not None:
            self.chains.unanswered(p.chain, min(self.now, p.last + self.cfg.timeout), ended=ended)

    # ------------------------------------------------------------------ ICMP
    def _icmp(self, ev: IcmpEvent, ts: float) -> None:
        self.counts.icmp_errors += 1
        about = IcmpAbout.QUERY
        server, sport, client, cport = ev.q_dst, ev.q_dport, ev.q_src, ev.q_sport
        p = quoted_query(self.pending, ev)
        if p is not None:
            p.icmp, p.icmp_from = ev.kind, ev.sender
        elif ev.q_sport == DNS_PORT and ev.q_dport != DNS_PORT:
            about = IcmpAbout.RESPONSE
            server, sport, client, cport = ev.q_src, ev.q_sport, ev.q_dst, ev.q_dport
        if about == IcmpAbout.QUERY:
            srv = self._server(server, sport)
            srv.icmp[ev.kind] += 1
            if len(srv.icmp_senders) < 8:
                srv.icmp_senders.add(ev.sender)
        seen = IcmpSeen(ts=ts, sender=ev.sender, to=ev.to, kind=ev.kind, icmp_type=ev.icmp_type,
                        icmp_code=ev.icmp_code, transport=ev.transport, about=about, server=server,
                        server_port=sport, client=client, client_port=cport, txid=ev.txid, qname=ev.qname,
                        qtype=qtype_name(ev.qtype) if ev.qtype is not None else None, matched=p is not None)
        self.evidence.add(self.evidence.icmp, seen)
        if self.sink:
            self.sink(seen)

    # ------------------------------------------------------------------ results
    def server_stats(self) -> tuple[ServerStats, ...]:
        """Every server's record, the busiest first (the rest beyond ``max_servers`` as "other")."""
        items = list(self.servers.items())
        if self._other_server.queries or self._other_server.responses:
            items.append((("other", 0), self._other_server))
        items.sort(key=lambda kv: -(kv[1].queries + kv[1].responses))
        return tuple(s.stats(addr, port) for (addr, port), s in items)

    def summary(self) -> CaptureSummary:
        """The frozen summary of everything fed so far (call ``finish`` first)."""
        n, ev = self.counts, self.evidence
        servers = self.server_stats()
        total = [0] * (NEVER + 1)
        for t in [*self.servers.values(), self._other_server]:
            total = [a + b for a, b in zip(total, t.hist, strict=True)]
        return CaptureSummary(
            first_ts=self.first_ts, last_ts=self.now if self.first_ts is not None else None,
            dns_messages=n.dns_messages, queries=n.queries, transactions=n.transactions,
            responses=n.responses, pairs=n.pairs, unanswered=n.unanswered,
            unanswered_explained=n.unanswered_explained, retransmissions=n.retransmissions,
            late_responses=n.late, unmatched_responses=n.unmatched, malformed=n.malformed,
            rcodes={rcode_name(k): v for k, v in n.rcodes.items()},
            qtypes={qtype_name(k): v for k, v in n.qtypes.items()}, transports=dict(n.transports),
            servers=servers, lookups_total=n.lookups_total, lookups=tuple(ev.lookups),
            lookups_with_search=n.lookups_with_search, search_queries=n.search_queries,
            search_nxdomain=n.search_nx, tc_responses=n.tc_responses,
            tc_followed_by_tcp=n.tc_followed, tc_not_followed=n.tc_not_followed,
            signature_hits=n.sig_hits, signature_examples=tuple(ev.signatures),
            signature_lost_types=dict(n.sig_lost), icmp_errors=n.icmp_errors,
            icmp_examples=tuple(ev.icmp), unanswered_examples=tuple(ev.unanswered),
            malformed_examples=tuple(ev.malformed), evicted_pending=n.evicted,
            timeout_s=self.cfg.timeout, pending_at_cut=n.pending_at_cut,
            max_pending=self.cfg.max_pending, lookups_attributed=n.lookups_attributed,
            unanswered_lost=sum(s.unanswered_lost for s in servers),
            unanswered_reasons={str(k): v for k, v in n.reasons.items()}, duplicate_responses=n.duplicates,
            mismatched_responses=n.mismatched, mismatch_examples=tuple(ev.mismatches),
            answer_rcodes=_sum_rcodes(servers),
            malformed_answers=n.malformed_answers, malformed_answer_examples=tuple(ev.malformed_answers),
            late_examples=tuple(ev.late), late_max_ms=n.late_max_ms if n.late_rcodes else None,
            late_min_ms=n.late_min_ms if n.late_rcodes else None, late_signature=n.late_signature,
            late_rcodes={rcode_name(k): v for k, v in n.late_rcodes.items()},
            latency_histogram=histogram(total), lookup_outcomes=dict(n.outcomes),
            failed_lookup_examples=tuple(ev.failed_lookups), search_answers=self.search_answers.answers())
