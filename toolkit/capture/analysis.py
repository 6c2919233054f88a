"""The streaming DNS analyzer: decoded events in, pairs, lookups and a summary out.

Pure: no sockets, no clock, no printing. Time is the capture time of the events, so the
same code serves a live capture and a pcap read back a year later. Memory is bounded by
configuration, never by the number of packets: pending queries expire (and are capped),
open search-list chains close after a quiet window (and are capped), only the last
``keep_lookups`` lookups and ``keep_evidence`` examples are kept, latency percentiles come
from a log-bucket histogram (exact samples only while there are few).

The analyzer runs the per-packet sequence; the concepts live beside it: ``pairing`` (a
query and its response, A/AAAA twins, truncation), ``chains`` (search-list walks into
lookups), ``counters`` (the totals), ``records`` (the results).

Results go two ways: ``sink`` receives each ``Pair``, ``Unanswered``, ``Retransmission``,
``Lookup``, ``IcmpSeen`` and ``Malformed`` as it happens (the CLI streams them), and
``summary()`` returns one frozen ``CaptureSummary`` at the end.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

from toolkit.capture.chains import ChainTracker, PendingKey, WhoAsks
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.counters import Counters, Evidence, ServerTally
from toolkit.capture.decode import DNS_PORT, Event, IcmpEvent, Malformed
from toolkit.capture.dnswire import (FLAG_AA, FLAG_QR, FLAG_TC, QTYPE_A, QTYPE_AAAA, RCODE_MASK, TCP, UDP, DnsEvent,
                                     qtype_name, rcode_name)
from toolkit.capture.pairing import Pending, TruncationWatch, Twins, quoted_query, signature, unlink
from toolkit.capture.records import (CaptureSummary, Explanation, IcmpAbout, IcmpSeen, Lookup, Pair, Retransmission,
                                     ServerStats, Unanswered, UnansweredReason)

_AAAA_OR_A = (QTYPE_A, QTYPE_AAAA)
SWEEP_EVERY_S = 0.05  # capture time between two expiry sweeps
Result = Pair | Unanswered | Retransmission | Lookup | IcmpSeen | Malformed
Sink = Callable[[Result], None]


def _lookup_tally(n: Counters, evidence: Evidence, sink: Sink | None) -> Callable[[Lookup], None]:
    """What happens to each completed lookup: counted, kept as evidence, streamed."""
    def done(lk: Lookup) -> None:
        n.lookups_total += 1
        if lk.process is not None:
            n.lookups_attributed += 1
        if len(lk.candidates) > 1:
            n.lookups_with_search += 1
            n.search_queries += lk.queries
            n.search_nx += lk.nxdomain
        evidence.lookups.append(lk)
        if sink:
            sink(lk)
    return done


class Analyzer:
    """Feed it events in capture order; ``finish()`` at the end; ``summary()`` for results."""

    def __init__(self, config: AnalyzerConfig | None = None, *, sink: Sink | None = None,
                 who: WhoAsks | None = None) -> None:
        self.cfg = cfg = config or AnalyzerConfig()
        self.sink = sink
        self.pending: OrderedDict[PendingKey, Pending] = OrderedDict()
        self.servers: dict[tuple[str, int], ServerTally] = {}
        self._other_server = ServerTally(cfg.exact_latency_samples)
        self.counts = Counters()
        self.evidence = Evidence(keep=cfg.keep_evidence, lookups=deque(maxlen=cfg.keep_lookups))
        # The tracker's callback must not hold the analyzer: a cycle (analyzer -> tracker ->
        # bound method -> analyzer) keeps the whole state (65k pending queries, their chains)
        # alive after the run until a full GC pass, which then takes ~0.35 s wherever it
        # happens to run (after a --deadline cut: past the deadline).
        self.chains = ChainTracker(cfg, self.pending, _lookup_tally(self.counts, self.evidence, sink), who)
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
        if len(self.evidence.malformed) < self.evidence.keep:
            self.evidence.malformed.append(ev)
        if self.sink:
            self.sink(ev)

    def add_malformed_count(self, n: int) -> None:
        """``n`` more damaged records whose reasons were not kept (the reader's cap)."""
        self.counts.malformed += max(0, n)

    def tick(self, now: float) -> None:
        """Expire what is due at capture time ``now`` (live mode calls it when idle)."""
        if now > self.now:
            self.now = now
        self._last_sweep = now
        pend = self.pending
        horizon = now - self.cfg.expire_after
        for _ in range(len(pend)):
            p = next(iter(pend.values()))
            if p.last > horizon:
                break
            self._expire(p, UnansweredReason.TIMEOUT)
        self.counts.tc_not_followed += self.tc.expire(now)
        self.chains.tick(now)
        self.twins.sweep(now)

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
        followup = False
        old = self.pending.get(key)
        if old is not None:
            same = old.qn == qn and old.qtype == ev.qtype
            # Like tshark (dns.retransmission_timer): the same question again within the
            # timeout of the first send is a retransmission; later, a new transaction.
            if same and ts - old.first <= self.cfg.timeout:
                self._retransmit(old, ts, srv)
                return
            if same and old.partner_answered_ms is not None:
                self._signature(old, ts, new_socket=False)
            followup = same and (old.sig_reported or old.sig_followup)
            self._expire(old, UnansweredReason.RESENT if same else UnansweredReason.TXID_REUSED)
        n.transactions += 1
        n.qtypes[ev.qtype] += 1
        n.transports[ev.transport] += 1
        p = Pending(key, ts, ev, qn)
        pend = self.pending
        pend[key] = p
        if len(pend) > self.cfg.max_pending:
            self._expire(next(iter(pend.values())), UnansweredReason.EVICTED)
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
        if len(self.evidence.signatures) < self.evidence.keep:
            self.evidence.signatures.append(hit)

    # ------------------------------------------------------------------ responses
    def _response(self, ev: DnsEvent, ts: float) -> None:
        n = self.counts
        n.responses += 1
        flags = ev.flags
        rcode = flags & RCODE_MASK
        n.rcodes[rcode] += 1
        p = self.pending.pop((ev.dst, ev.dport, ev.src, ev.sport, ev.transport, ev.txid), None)
        srv = self._server(ev.src, ev.sport)
        srv.responses += 1
        srv.rcodes[rcode] += 1
        tc = bool(flags & FLAG_TC)
        if tc or (ev.transport == TCP and self.tc.waiting):
            self._truncation(ev, ts, tc)
        if p is None:
            n.unmatched += 1
            return
        n.pairs += 1
        # Never negative: a live capture's kernel timestamps are taken per CPU, so on a busy
        # veth an answer can be stamped a few microseconds before its query (both are read
        # from one ring; a replayed pcap can do the same). Zero, not a negative latency.
        lat = max(0.0, (ts - p.first) * 1000.0)
        lat_last = max(0.0, (ts - p.last) * 1000.0)
        p.answered_ms = lat
        srv.lat.add(lat)
        late = lat_last > self.cfg.timeout * 1000.0
        if late:
            n.late += 1
        addrs = ev.addresses() if ev.ancount and p.qtype in _AAAA_OR_A else ()
        if p.partner is not None:
            self.twins.answered(p, lat)  # its A/AAAA twin, unanswered yet, is watched for the resend
        c = p.chain
        if c is not None:
            self.chains.answered(c, rcode, ev.ancount, p.qname, addrs, ts)
        if self.sink:
            self.sink(Pair(
                ts=p.first, client=p.client, client_port=p.cport, server=p.server, server_port=p.sport,
                transport=p.transport, txid=p.txid, qname=p.qname, qtype=qtype_name(p.qtype),
                rcode=rcode_name(rcode), latency_ms=lat, latency_last_ms=lat_last, retransmissions=p.sends - 1,
                answers=ev.ancount, addresses=addrs, tc=tc, aa=bool(flags & FLAG_AA), late=late))

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
        n = self.counts
        self.pending.pop(p.key, None)
        unlink(p)
        if reason == UnansweredReason.EVICTED:
            n.evicted += 1
        n.unanswered += 1
        explained = None
        if p.partner_answered_ms is not None or p.sig_followup:
            explained = Explanation.SIGNATURE
            n.unanswered_explained += 1
        srv = self.servers.get((p.server, p.sport)) or self._other_server
        srv.unanswered += 1
        if explained:
            srv.explained += 1
        elif reason == UnansweredReason.CAPTURE_ENDED:
            srv.ended += 1
        if p.chain is not None:
            self.chains.unanswered(p.chain, min(self.now, p.last + self.cfg.timeout))
        u = Unanswered(ts=p.first, client=p.client, client_port=p.cport, server=p.server, server_port=p.sport,
                       transport=p.transport, txid=p.txid, qname=p.qname, qtype=qtype_name(p.qtype), sends=p.sends,
                       waited_s=self.now - p.first, reason=reason, icmp=p.icmp, icmp_from=p.icmp_from,
                       explained_by=explained)
        if len(self.evidence.unanswered) < self.evidence.keep:
            self.evidence.unanswered.append(u)
        if self.sink:
            self.sink(u)

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
        if len(self.evidence.icmp) < self.evidence.keep:
            self.evidence.icmp.append(seen)
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
        return CaptureSummary(
            first_ts=self.first_ts, last_ts=self.now if self.first_ts is not None else None,
            dns_messages=n.dns_messages, queries=n.queries, transactions=n.transactions,
            responses=n.responses, pairs=n.pairs, unanswered=n.unanswered,
            unanswered_explained=n.unanswered_explained, retransmissions=n.retransmissions,
            late_responses=n.late, unmatched_responses=n.unmatched, malformed=n.malformed,
            rcodes={rcode_name(k): v for k, v in n.rcodes.items()},
            qtypes={qtype_name(k): v for k, v in n.qtypes.items()}, transports=dict(n.transports),
            servers=self.server_stats(), lookups_total=n.lookups_total, lookups=tuple(ev.lookups),
            lookups_with_search=n.lookups_with_search, search_queries=n.search_queries,
            search_nxdomain=n.search_nx, tc_responses=n.tc_responses,
            tc_followed_by_tcp=n.tc_followed, tc_not_followed=n.tc_not_followed,
            signature_hits=n.sig_hits, signature_examples=tuple(ev.signatures),
            signature_lost_types=dict(n.sig_lost), icmp_errors=n.icmp_errors,
            icmp_examples=tuple(ev.icmp), unanswered_examples=tuple(ev.unanswered),
            malformed_examples=tuple(ev.malformed), evicted_pending=n.evicted,
            timeout_s=self.cfg.timeout, pending_at_cut=n.pending_at_cut,
            max_pending=self.cfg.max_pending, lookups_attributed=n.lookups_attributed)
