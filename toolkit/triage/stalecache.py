"""A cache answering past its upstream (issue 26): the pod's nameserver (NodeLocal DNSCache,
a CoreDNS with ``cache``) gives an answer its upstream, asked directly now, no longer gives.

The Corefile trace (toolkit.corefile.cachechain) names, for the name, each caching hop and the
upstream it forwards to: pod -> NodeLocal 169.254.25.10 -> kube-dns 10.233.0.3 -> the final
upstream. ``ask_caches`` asks each caching hop once and its upstream twice; ``compare`` is pure.

Rotation is not staleness. CoreDNS's ``loadbalance`` only shuffles the order, but an upstream
may answer round-robin subsets of a larger pool, and a cache holds the subset it got. The rule:
- the upstream gives the same set twice (a stable answer): the cache is stale when it holds an
  address that set does not have (it gives fewer addresses: not stale, the upstream grew);
- the upstream's two answers differ (it rotates subsets): stale only when the cache's addresses
  are disjoint from both (one shared address says the cache holds a subset of the pool);
- the upstream gives no address now (NXDOMAIN, SERVFAIL, NODATA) while the cache answers: the
  cache answers past its upstream. Silence or REFUSED from the upstream counts only with the
  cache's TTL 0 (an upstream that admits only the nodes' addresses is silent or refuses the pod
  while the cache, fed by it, answers with a TTL counting down). CoreDNS's ``serve_stale``
  answers that way, with TTL 0: coredns plugin/cache/handler.go, "Adjust the time to get a 0 TTL in the
  reply built from a stale item"; 1.14 lets ``serve_stale DURATION immediate TTL`` set it).
TTLs are staleness markers, shown with both answers: a cache's TTL counts down from what its
upstream gave (capped by ``cache``'s own TTL), an upstream's is full; 0 from a cache is a stale
entry served.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from toolkit.deadline import Deadline
from toolkit.dns.query import QueryResult, Transport, query
from toolkit.dns.walk import ServerRole
from toolkit.triage.resolve import ResolveResult

if TYPE_CHECKING:  # the Corefile machinery (~15 ms of imports) only comes with --corefile
    from toolkit.corefile.cachechain import CacheHop

CODE = "stale-cache-answer"


class Staleness(StrEnum):
    """Why the cache's answer is past its upstream's."""

    DIFFERS = "differs"  # the upstream answers other addresses now
    UPSTREAM_FAILS = "upstream-fails"  # the upstream gives no address now, the cache still does


@dataclass(frozen=True, kw_only=True)
class CacheCheck:
    """One caching hop asked beside its upstream (the upstream twice: rotation or not)."""

    hop: CacheHop
    cache: str  # the caching server's address as asked
    qname: str
    cache_answer: QueryResult
    upstream_answers: tuple[QueryResult, ...]

    @property
    def cache_addresses(self) -> tuple[str, ...]:
        """What the cache answers (sorted)."""
        return tuple(sorted(self.cache_answer.answers)) if self.cache_answer.rcode == "NOERROR" else ()

    @property
    def upstream_sets(self) -> tuple[frozenset[str], ...]:
        """The address sets of the upstream's answers that carried addresses."""
        return tuple(frozenset(u.answers) for u in self.upstream_answers if u.rcode == "NOERROR" and u.answers)

    @property
    def upstream_addresses(self) -> tuple[str, ...]:
        """Every address the upstream gave (sorted)."""
        return tuple(sorted(frozenset().union(*self.upstream_sets)))

    @property
    def rotating(self) -> bool:
        """The upstream's answers differ from one query to the next."""
        return len(set(self.upstream_sets)) > 1

    @property
    def staleness(self) -> Staleness | None:
        """Why the cache is past its upstream, or None (it agrees, or rotation explains it)."""
        cached = set(self.cache_addresses)
        if not cached:
            return None
        if not self.upstream_sets:
            return Staleness.UPSTREAM_FAILS if self._upstream_denies or self.cache_answer.ttl == 0 else None
        pool = set(self.upstream_addresses)
        gone = cached - pool
        if gone and (not self.rotating or not cached & pool):
            return Staleness.DIFFERS
        return None

    @property
    def _upstream_denies(self) -> bool:
        """The upstream answered, and its answer has no address: NXDOMAIN, NODATA, SERVFAIL. A
        timeout or REFUSED may only say that this pod cannot ask it (an ACL that admits the
        nodes, a NetworkPolicy): alone it is no staleness, only with the cache's TTL 0 marker."""
        return any(u.rcode in ("NXDOMAIN", "SERVFAIL") or (u.rcode == "NOERROR" and not u.answers)
                   for u in self.upstream_answers)

    @property
    def stale_addresses(self) -> tuple[str, ...]:
        """The cache's addresses the upstream does not vouch for."""
        pool = set(self.upstream_addresses)
        return tuple(a for a in self.cache_addresses if a not in pool)

    @property
    def upstream_last(self) -> QueryResult:
        """The upstream answer shown: the last one with addresses, else the last."""
        with_addrs = [u for u in self.upstream_answers if u.rcode == "NOERROR" and u.answers]
        return (with_addrs or list(self.upstream_answers))[-1]

    def data(self) -> dict[str, Any]:  # Any: JSON values for runbooks
        """The finding's ``data`` (the contract keys of issue 26, and more)."""
        up = self.upstream_last
        return {"cache": self.cache, "upstream": self.hop.upstream, "cache_answer": list(self.cache_addresses),
                "upstream_answer": list(self.upstream_addresses), "cache_ttl": self.cache_answer.ttl,
                "upstream_ttl": up.ttl if up.answers else None, "serve_stale": self.hop.serve_stale,
                "staleness": self.staleness, "qname": self.qname, "rotating": self.rotating,
                "upstream_outcome": said(up), "stale_addresses": list(self.stale_addresses),
                "corefile": self.hop.corefile, "block": self.hop.block, "cache_line": self.hop.cache_line,
                "cache_directive": self.hop.cache_text, "node_cache": self.hop.node_cache,
                "cache_max_ttl": self.hop.max_ttl}


def said(r: QueryResult) -> str:
    """One query's outcome in words: its addresses with TTL, its rcode, or why nothing came."""
    if r.rcode is None:
        return f"no answer ({r.error_detail or r.error})"
    if r.rcode != "NOERROR":
        return r.rcode
    if not r.answers:
        return "NODATA"
    return f"{', '.join(sorted(r.answers))} (TTL {r.ttl})"


def _qname(res: ResolveResult) -> tuple[str, int, str, QueryResult | None] | None:
    """(the pod's nameserver that answered, its port, the candidate it answered, the walk's A
    answer for it): what the pod uses."""
    for p in res.paths:
        if p.role == ServerRole.RESOLV_CONF and p.answered and p.hit:
            walk = next((q for q in p.queries if q.qname == p.hit and q.qtype == "A" and q.answers), None)
            return p.server, next((q.port for q in p.queries), 53), p.hit, walk
    return None


def ask_caches(res: ResolveResult, hops: Sequence[CacheHop], deadline: Deadline, qt: float,
               say: Callable[[str], None]) -> tuple[CacheCheck, ...]:
    """Ask each caching hop of the trace (the first is the pod's nameserver that answered) and
    its upstream (twice, unless the first time it gave no DNS answer), over UDP, each query
    within ``qt`` and the deadline."""
    first = _qname(res)
    if first is None or not hops:
        return ()
    server, port, qname, walk = first
    out: list[CacheCheck] = []
    for hop in hops:
        if hop.cache:
            say(f"asking the cache {server} and its upstream {hop.upstream} for {qname} directly")
            mine = query(server, qname, "A", Transport.UDP, deadline.timeout(qt), port=port)
            if walk is not None and not mine.answers:
                # the pod's own walk got addresses a moment ago: that is what the pod uses (CoreDNS
                # 1.12.1's serve_stale flips to SERVFAIL once its background refresh's SERVFAIL
                # is cached: plugin/cache/handler.go getIgnoreTTL looks at the negative cache first)
                mine = walk
            ups = [query(hop.upstream, qname, "A", Transport.UDP, deadline.timeout(qt), port=hop.upstream_port)]
            if ups[0].answered:
                ups.append(query(hop.upstream, qname, "A", Transport.UDP, deadline.timeout(qt),
                                 port=hop.upstream_port))
            out.append(CacheCheck(hop=hop, cache=server, qname=qname, cache_answer=mine,
                                  upstream_answers=tuple(ups)))
        server, port = hop.upstream, hop.upstream_port
        walk = None  # only the pod's own nameserver was walked
    return tuple(out)
