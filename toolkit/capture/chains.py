"""Search-list chains: which queries make up one application lookup.

A lookup is one client's walk of the search list (resolv.conf ``search``, ``ndots``),
candidate by candidate, until a positive answer or the last candidate's failure. On the
wire it is a run of queries from one address, over one or several sockets, interleaved
with every other lookup of the pod. ``ChainTracker`` holds the open walks ("chains") and
puts each new query into the one it continues, or starts a new one; a chain closes after
``chain_window`` of quiet and becomes a ``Lookup``.

Memory is bounded by configuration: open chains are capped per client and in all, their
indexes hold open chains only, and a closed chain drops its references to the queries.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Container
from typing import Protocol, TypeVar

from toolkit.capture.config import MAXNS, AnalyzerConfig
from toolkit.capture.dnswire import (QTYPE_A, QTYPE_AAAA, RCODE_NOERROR, RCODE_NXDOMAIN, Transport, qtype_name,
                                     rcode_name)
from toolkit.capture.records import Lookup, LookupOutcome, ProcessInfo
from toolkit.errors import best_effort

_TYPE_BIT: dict[int, int] = {QTYPE_A: 1, QTYPE_AAAA: 2}  # any other type: 4
_NEW_LOOKUP = 5.0  # the rank of "no chain takes it"
_RESTART = 3.4  # the rank of "the other type's walk starts" (next candidates rank 3.5 to 4.9)
_MAX_CANDIDATE_POSITIONS = 4096
K = TypeVar("K")
# What pairs a response with its query: client, client port, server, server port, transport, ID.
PendingKey = tuple[str, int, str, int, Transport, int]


class WhoAsks(Protocol):
    """Who held a client socket: ``(address, port, transport, first, last)`` -> process.

    The time window (the lookup's first and last packet, capture time) matters: ephemeral
    ports are reused within seconds, and toolkit.capture.whoasked names a process only for
    a socket it saw open inside that window."""

    def __call__(self, ip: str, port: int, transport: Transport, first: float, last: float, /) -> ProcessInfo | None:
        ...


class Query(Protocol):
    """What a chain needs to know about a transaction (``pairing.Pending``)."""

    key: PendingKey
    client: str
    cport: int
    server: str
    transport: Transport
    txid: int
    qn: str  # the question name, lower case
    qtype: int
    first: float
    last: float
    origin: float  # the question's first send, across resends
    retried: bool  # a later transaction took the question over
    answered_ms: float | None
    chain: Chain | None


class Chain:
    """One open walk of the search list by one client (one resolver call)."""

    __slots__ = ("id", "client", "base", "names", "qtypes", "first", "last", "queries", "retrans",
                 "nx", "nodata", "errors", "unanswered", "pending", "answered_name", "addresses",
                 "servers", "cports", "last_negative", "positive", "process", "last_rcode", "gap", "asked",
                 "cur_ports", "cur_types", "prev_types", "transport", "pos", "walk_positive", "first_label")

    def __init__(self, cid: int, client: str, base: tuple[str, ...], ts: float, transport: Transport) -> None:
        self.id = cid
        self.client = client
        self.base = base
        self.first_label = base[0] if base else ""  # its key in ChainTracker._neg_first
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
        self.last_rcode: int | None = None  # the rcode of the last answer; None: the last word was none
        self.gap = LookupOutcome.UNANSWERED  # ... and why there was none (or the read was cut short)
        # (name, qtype) -> the latest transaction that asked it: tells a retry from a new lookup
        self.asked: dict[tuple[str, int], Query] = {}
        self.cur_ports: set[int] = set()  # client ports of the current candidate's queries
        self.cur_types = 0  # qtypes asked for the current candidate (bits: _TYPE_BIT)
        self.prev_types = 0  # ... and for the one before it
        self.transport = transport
        # The index in ``names`` of the current candidate: a resolver that walks the search
        # list once per type (AAAA first, then A) restarts at names[0] for the second type.
        self.pos = 0
        self.walk_positive = False  # the current type's walk got its positive answer

    def outcome(self) -> LookupOutcome | str:
        """How the lookup ended: answered, NODATA, unanswered, cut short, or the error rcode."""
        if self.positive:
            return LookupOutcome.ANSWERED
        if self.last_rcode is None:
            return self.gap
        if self.last_rcode == RCODE_NOERROR:
            return LookupOutcome.NODATA
        return rcode_name(self.last_rcode)

    def lookup(self) -> Lookup:
        """The frozen record of this walk."""
        return Lookup(
            ts=self.first, client=self.client, base=".".join(self.base) if self.base else ".",
            candidates=tuple(self.names), qtypes=tuple(qtype_name(t) for t in self.qtypes),
            queries=self.queries, retransmissions=self.retrans, nxdomain=self.nx, nodata=self.nodata,
            errors=self.errors, unanswered=self.unanswered, outcome=self.outcome(),
            answered_name=self.answered_name, addresses=self.addresses,
            duration_ms=(self.last - self.first) * 1000.0, servers=tuple(self.servers),
            client_ports=tuple(self.cports), process=self.process)


def _lcp(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _unindex(index: dict[K, list[Chain]], key: K, c: Chain) -> None:
    lst = index.get(key)
    if lst is not None:
        try:
            lst.remove(c)
        except ValueError:
            pass
        if not lst:
            del index[key]


class ChainTracker:
    """The open search-list walks; each closes into a ``Lookup`` handed to ``emit``."""

    def __init__(self, cfg: AnalyzerConfig, pending: Container[PendingKey], emit: Callable[[Lookup], None],
                 who: WhoAsks | None = None) -> None:
        self.cfg = cfg
        self.pending = pending  # the analyzer's queries waiting for an answer, by key
        self.emit = emit
        self.who = who
        self.search = tuple(s.strip(".").lower() for s in cfg.search if s.strip("."))
        self.chains: OrderedDict[int, Chain] = OrderedDict()  # open, by last activity
        self._blocked: dict[int, Chain] = {}  # quiet but waiting on a pending query
        self._client_chains: dict[str, list[Chain]] = {}
        self._chain_ids = 0
        self._cand_pos: dict[str, int] = {}  # candidate name -> its position in the walks seen
        self._by_name: dict[tuple[str, str], list[Chain]] = {}  # (client, name) -> open chains that asked it
        self._negative: dict[str, list[Chain]] = {}  # client -> open chains without a positive answer
        # the same chains by (client, first label of the base), in the same order: every name a
        # chain asks shares its base's first label (a rank-4 join needs it: a common prefix,
        # or the base itself, or the name as is), so only those can take a query (_best).
        # Measured: 46 open negative walks scanned per query on one busy client, 60 % of the
        # analysis (tcpreplay of 420k lab packets, scripts/benchmarks/capture_replay.py).
        self._neg_first: dict[tuple[str, str], list[Chain]] = {}
        self._neg_exact = True  # False if a base ever changed its first label: scan them all
        # the config's bounds by server count (both clamp it to 1..MAXNS): computed once, not
        # per open chain per query (measured: 520k calls, 10 % of the analysis)
        self._retry_bounds = tuple(cfg.retry_bound(n) for n in range(MAXNS + 1))
        self._try_bounds = tuple(cfg.try_bound(n) for n in range(MAXNS + 1))

    def base_of(self, qn: str) -> tuple[str, ...]:
        """The name the application asked for: ``qn`` without a search domain it ends in."""
        labels = tuple(qn.split(".")) if qn and qn != "." else ()
        for s in self.search:
            if qn.endswith("." + s):
                return tuple(qn[: -len(s) - 1].split("."))
        return labels

    # ------------------------------------------------------------------ new queries
    def add(self, p: Query, qn: str, ts: float, sib: Query | None = None) -> None:
        """Put a new transaction into the lookup (one resolver call) it belongs to.

        What joins an open chain, best first (the rank):
        0. a question it asked already, sent again with the same ID from the same socket, or
           from a new one after a timeout (glibc resends both queries on the socket after its
           timeout, then from new sockets with the same IDs);
        1. a question it asked already whose answer is still missing, with a new ID from a new
           socket after the resolver's timeout (Go's pure resolver: one socket per exchange);
        2. the other type of its current candidate from the same socket (glibc, musl), then
        3. ... from another socket (Go, glibc ``single-request-reopen``);
        3.4 the other type's walk, restarting at the first candidate right after the first
           type's walk ended (AAAA first: older glibc, Windows; or A first);
        4. the next candidate, once every query of the current one failed.
        Retries (0, 1) join only within the resolver's own bound for one question (timeout x
        attempts x servers: ``AnalyzerConfig.retry_bound``), counted from the question's
        first send; a chain waiting on a lost answer takes nothing after that bound either.
        Anything else starts a new lookup: a repeated first candidate never joins a chain
        that asked it already, so the same name looked up twice (or by 20 threads at once)
        from one pod address gives one lookup per resolver call. ``sib`` is the query this
        socket sent before (``pairing.Twins.pair``).
        """
        qt = p.qtype
        sc = sib.chain if sib is not None else None
        if (sib is not None and sc is not None and sib.qn == qn and sib.qtype != qt and sc.names
                and sc.names[-1] == qn and (qn, qt) not in sc.asked and sc.id in self.chains):
            # fast path, most queries: the other type of the candidate this socket just asked
            self.chains.move_to_end(sc.id)
            self._join(sc, p, qn, qt, 2.0, ts)
            return
        chain, rank, labels = self._best(p, qn, ts)
        if (rank == _NEW_LOOKUP and sib is not None and sc is not None and sib.qn == qn and sib.qtype != qt
                and sib.answered_ms is None and sib.key in self.pending and ts - sib.first <= self.cfg.race_window):
            # This socket's previous question (the other type of the same name, sent just
            # before) had joined another walk as its "other type from another socket"; now
            # that a second question comes from the same socket, it is a lookup of its own
            # (glibc and musl send A and AAAA together from one socket).
            self._detach(sib)
            labels = self.base_of(qn)
            chain = self._new_chain(sib, labels, ts)
            self._join(chain, sib, qn, sib.qtype, _NEW_LOOKUP, sib.first)
            rank = 2.0
        if chain is None:
            chain = self._new_chain(p, labels if labels is not None else self.base_of(qn), ts)
        else:
            if chain.id in self.chains:
                self.chains.move_to_end(chain.id)
            if labels is not None and 3.5 <= rank < _NEW_LOOKUP:
                if not self.search:
                    chain.base = _lcp(labels, chain.base)
                elif self._as_is(chain, qn) and qn != ".".join(chain.base):
                    chain.base = tuple(chain.names[0].split("."))
                if (chain.base[0] if chain.base else "") != chain.first_label:
                    self._neg_exact = False  # not seen to happen: the index would be stale
            if rank <= 1:
                self._take_over(chain, p, qn, qt)
        self._join(chain, p, qn, qt, rank, ts)

    def _take_over(self, c: Chain, p: Query, qn: str, qt: int) -> None:
        """``p`` asks again what ``c`` asked before (a retry): it carries the question's first
        send, and an earlier transaction still waiting leaves the walk to it (its own fate
        no longer decides the lookup's)."""
        prev = c.asked.get((qn, qt))
        if prev is None or prev is p or prev.key == p.key:
            return
        p.origin = min(p.origin, prev.origin)
        if prev.answered_ms is None and prev.key in self.pending:
            prev.retried = True
            if prev.chain is c:
                prev.chain = None
                c.pending -= 1

    def _best(self, p: Query, qn: str, ts: float) -> tuple[Chain | None, float, tuple[str, ...] | None]:
        """The open chain this query continues, best rank first (see ``add``), its rank,
        and the query's base labels when they had to be worked out."""
        # Only two kinds of chain can take this query: those that asked this name already
        # (ranks 0-3) and those of this client still without a positive answer (rank 4).
        # Indexed, so a pod with a thousand walks open costs no more than one with two.
        chain: Chain | None = None
        rank = _NEW_LOOKUP
        named = self._by_name.get((p.client, qn))
        neg, labels = self._negative_of(p.client, qn)
        if not named and not neg:
            return chain, rank, labels
        cfg = self.cfg
        qt = p.qtype
        for c in itertools.chain(reversed(named or ()), reversed(neg or ())):
            quiet = ts - c.last
            prev = c.asked.get((qn, qt))
            if prev is not None:
                # a retry: bounded by the resolver's patience with one question, not by quiet
                if (ts - prev.origin > self._bound(c, p)
                        or ts - prev.last > self._try_bounds[min(MAXNS, len(c.servers) + (p.server not in c.servers))]):
                    # the resolver would have given up on it, or sent it again long before:
                    # a new call asks again
                    continue
                if (prev.txid == p.txid and prev.transport == p.transport
                        and (prev.cport == p.cport or ts - prev.last >= cfg.retry_after)):
                    # (another socket must wait out a timeout: musl derives IDs from the
                    # clock and 20 threads draw 16-bit IDs, so equal IDs do occur)
                    r = 0.0
                elif prev.answered_ms is None and ts - prev.last >= cfg.retry_after:
                    r = 1.0
                else:
                    continue  # asked already: a concurrent or a later lookup's query
            elif quiet > cfg.chain_window and (c.pending <= 0 or quiet > self._bound(c, p)):
                continue  # closed, or waiting on an answer for longer than any resolver waits
            elif c.names and qn == c.names[c.pos]:
                r = 2.0 if p.cport in c.cur_ports else 3.0
            elif (c.pending <= 0 and quiet <= cfg.restart_window and c.names and qn == c.names[0]
                  and self._restarts(c, qt)):
                r = _RESTART
            elif (not c.walk_positive and c.pending <= 0 and c.last_negative
                  and c.cur_types & c.prev_types == c.prev_types):
                if labels is None:
                    labels = self.base_of(qn)
                next_rank = self._next_candidate_rank(c, qn, labels)
                if next_rank is None:
                    continue
                r = next_rank
            else:
                continue
            # Ties: the chain that heard from the server last. A resolver sends its next
            # question right after the answer it waited for (tens of microseconds), so
            # among concurrent walks the one just answered is the one moving on.
            if r < rank or (r == rank and chain is not None and c.last > chain.last):
                chain, rank = c, r
                if r == 0:
                    break
        return chain, rank, labels

    def _negative_of(self, client: str, qn: str) -> tuple[list[Chain] | None, tuple[str, ...] | None]:
        """The open chains of ``client`` without a positive answer that may take ``qn`` (those
        whose base starts with its first label, see ``_neg_first``), and its base labels."""
        neg = self._negative.get(client)
        if not neg or not self._neg_exact:
            return neg, None
        labels = self.base_of(qn)
        return self._neg_first.get((client, labels[0] if labels else "")), labels

    def _bound(self, c: Chain, p: Query) -> float:
        """How long one resolver call keeps asking one question of ``c``'s walk."""
        return self._retry_bounds[min(MAXNS, len(c.servers) + (p.server not in c.servers))]

    @staticmethod
    def _restarts(c: Chain, qt: int) -> bool:
        """A query of type ``qt`` starts the other type's walk of ``c`` (rank 3.4; the caller
        checked that every answer is in, the last just now, and that it asks the first
        candidate): the walk asked one of A/AAAA only, and this is the other."""
        return len(c.qtypes) == 1 and c.qtypes[0] in _TYPE_BIT and qt in _TYPE_BIT and qt != c.qtypes[0]

    def _next_candidate_rank(self, c: Chain, qn: str, labels: tuple[str, ...]) -> float | None:
        """Rank 4: ``qn`` as the next candidate of ``c``'s walk (all of its current one
        failed), or None when its base name does not fit the walk."""
        if c.pos + 1 < len(c.names):
            # a restarted walk (the second type) goes through the candidates the first took
            return 4.0 if qn == c.names[c.pos + 1] else None
        if qn in c.names:
            return None
        if self.search:
            if not labels or (labels != c.base and not self._as_is(c, qn)):
                return None
        elif not _lcp(labels, c.base):
            return None
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
        return r

    def _as_is(self, c: Chain, qn: str) -> bool:
        """``qn`` is ``c``'s name asked as is: last, after the search domains (fewer than
        ndots dots), or first, the next candidates being it with a search domain appended
        (glibc res_search, musl name_from_dns_search). base_of cannot tell when the name ends
        in a search domain itself (``api.corp.example`` with ``search corp.example``: ``api``)."""
        if qn == ".".join(c.base):
            return True
        first = c.names[0] if c.names else ""
        return bool(first) and any(qn == f"{first}.{s}" for s in self.search)

    def _new_chain(self, p: Query, labels: tuple[str, ...], ts: float) -> Chain:
        cfg = self.cfg
        self._chain_ids += 1
        chain = Chain(self._chain_ids, p.client, labels, ts, p.transport)
        self.chains[chain.id] = chain
        self._negative.setdefault(p.client, []).append(chain)
        self._neg_first.setdefault((p.client, chain.first_label), []).append(chain)
        lst = self._client_chains.setdefault(p.client, [])
        lst.append(chain)
        if len(lst) > cfg.max_chains_per_client:
            self.close(lst[0])
        if len(self.chains) + len(self._blocked) > cfg.max_open_chains:
            oldest = next(iter(self._blocked.values()), None) or next(iter(self.chains.values()))
            self.close(oldest)
        return chain

    def _join(self, chain: Chain, p: Query, qn: str, qt: int, rank: float, ts: float) -> None:
        if ts > chain.last:
            chain.last = ts
        chain.pending += 1
        if rank <= 1:
            chain.retrans += 1  # the resolver asking again: not a new query of the lookup
        else:
            chain.queries += 1
        if rank == _RESTART or (3.5 <= rank < _NEW_LOOKUP) or not chain.names:
            chain.prev_types = chain.cur_types
            chain.cur_types = 0
            chain.cur_ports = set()
            if rank == _RESTART:
                chain.pos = 0
                chain.prev_types = 0
                chain.walk_positive = False  # the second type's walk goes on until its own answer
            elif chain.names:
                chain.pos += 1
        chain.cur_types |= _TYPE_BIT.get(qt, 4)
        chain.cur_ports.add(p.cport)
        if len(chain.asked) < 64:
            chain.asked[(qn, qt)] = p
        if qn not in chain.names and len(chain.names) < 16:
            if qn not in self._cand_pos:
                if len(self._cand_pos) >= _MAX_CANDIDATE_POSITIONS:
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

    def _detach(self, p: Query) -> None:
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

    # ------------------------------------------------------------------ what happened to them
    def resent(self, c: Chain, ts: float) -> None:
        """A query of ``c`` was retransmitted."""
        c.retrans += 1
        c.last = ts

    def answered(self, c: Chain, rcode: int, ancount: int, qname: str | None, addrs: tuple[str, ...],
                 ts: float, *, malformed: bool = False) -> None:
        """A query of ``c`` was answered with ``rcode`` and ``ancount`` answer records
        (``malformed``: records nobody can read; the lookup fails as glibc's does)."""
        c.pending -= 1
        c.last = ts
        c.last_rcode = rcode
        if malformed:
            c.errors += 1
            c.last_rcode = None
            c.gap = LookupOutcome.MALFORMED
            c.last_negative = not c.positive
        elif rcode == RCODE_NXDOMAIN:
            c.nx += 1
            c.last_negative = True
        elif rcode == RCODE_NOERROR:
            if ancount:
                if not c.positive:
                    _unindex(self._negative, c.client, c)
                    _unindex(self._neg_first, (c.client, c.first_label), c)
                c.positive = c.walk_positive = True
                c.last_negative = False
                if c.answered_name is None:
                    c.answered_name = qname
                if addrs and len(c.addresses) < 16:
                    c.addresses = c.addresses + tuple(a for a in addrs if a not in c.addresses)[:16]
            else:
                c.nodata += 1
                c.last_negative = not c.positive
        else:
            c.errors += 1
            c.last_negative = not c.positive
        if c.pending <= 0:
            # Positive or not, the chain closes after chain_window of quiet (tick): the
            # capture may deliver the A answer before the AAAA query sent with it.
            self._unblock(c)

    def unanswered(self, c: Chain, until: float, *, ended: bool = False) -> None:
        """A query of ``c`` was given up; the walk went on at least ``until`` (``ended``:
        the capture ended while it waited, inside the timeout)."""
        c.pending -= 1
        c.unanswered += 1
        c.last_rcode = None
        c.gap = LookupOutcome.CAPTURE_ENDED if ended else LookupOutcome.UNANSWERED
        c.last_negative = not c.positive
        c.last = max(c.last, until)
        if c.pending <= 0:
            self._unblock(c)

    def superseded(self, c: Chain) -> None:
        """A query of ``c`` was taken over by its resend (its successor joins in its place)."""
        c.pending -= 1
        if c.pending <= 0:
            self._unblock(c)

    def cut_short(self, c: Chain) -> None:
        """A query of ``c`` was still waiting when the read of a file stopped."""
        c.pending -= 1
        if not c.positive:
            c.last_rcode = None
            c.gap = LookupOutcome.CUT_SHORT

    # ------------------------------------------------------------------ closing
    def tick(self, now: float) -> None:
        """Close the chains quiet for ``chain_window`` (those still waiting on a query are
        parked until it resolves)."""
        chains = self.chains
        horizon = now - self.cfg.chain_window
        for _ in range(len(chains)):
            c = next(iter(chains.values()))
            if c.last > horizon:
                break
            if c.pending > 0:
                chains.pop(c.id)
                self._blocked[c.id] = c
                continue
            self.close(c)

    def close_all(self) -> None:
        """The end of the capture: every chain becomes a lookup."""
        for c in list(self.chains.values()) + list(self._blocked.values()):
            self.close(c)

    def _unblock(self, c: Chain) -> None:
        if self._blocked.pop(c.id, None) is not None:
            self.chains[c.id] = c

    def close(self, c: Chain) -> None:
        """Close ``c``: out of every index, asked who asked, emitted as a ``Lookup``."""
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
            _unindex(self._by_name, (c.client, name), c)
        if not c.positive:
            _unindex(self._negative, c.client, c)
            _unindex(self._neg_first, (c.client, c.first_label), c)
        c.asked.clear()  # chain -> transaction -> chain: break the cycle, refcounting frees both
        if self.who is not None and c.process is None:
            c.process = self._who_asked(self.who, c)
        self.emit(c.lookup())

    @staticmethod
    def _who_asked(who: WhoAsks, c: Chain) -> ProcessInfo | None:
        # Asked at the end, not the start: the socket watch has had the chain window to
        # resolve the lookup's sockets; any of its client ports names the process.
        for port in c.cports:
            process = None
            with best_effort(None, "who asked"):  # an observation that failed: unattributed
                process = who(c.client, port, c.transport, c.first, c.last)
            if process is not None:
                return process
        return None
