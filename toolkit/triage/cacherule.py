"""The ``stale_cache_answer`` row of diagnose's table (toolkit.triage.table): a cache on the
pod's path answers past its upstream (toolkit.triage.stalecache says when). Pure.

The verdict follows what the stale address does, as for every wrong answer (DESIGN.md,
bad-answer): when an address only the cache gives does not serve the port, the answer is the
cause (bad-answer, critical); when it serves, or was not probed, the finding stays a warning
without a verdict (the name works, from a cache that no longer matches its upstream).
"""

from __future__ import annotations

from toolkit.model import Finding, Severity, Verdict
from toolkit.triage.evidence import NOT_SERVING, Facts
from toolkit.triage.stalecache import CODE, CacheCheck, Staleness, said


def _who(c: CacheCheck) -> str:
    kind = "NodeLocal DNSCache" if c.hop.node_cache else "the CoreDNS cache"
    return f"{kind} {c.cache}"


def _ttl_marker(c: CacheCheck) -> str:
    ttl = c.cache_answer.ttl
    if ttl == 0:
        return ("the cache's TTL 0 is an expired entry served stale"
                + (" (its `cache` has serve_stale)" if c.hop.serve_stale else ""))
    cap = c.hop.max_ttl
    if ttl is not None and cap is not None and ttl > cap:
        return (f"the cache's TTL {ttl} is above its `{c.hop.cache_text}` cap of {cap}: the answer is not one of "
                "this cache's entries; the Corefile running there differs from the one given (a `hosts`, `file` "
                "or `template` block answering it?)")
    up = c.upstream_last
    if ttl is not None and up.ttl is not None and up.answers and ttl < up.ttl:
        return f"the cache's TTL {ttl} counts down from an older answer; the upstream's full TTL is {up.ttl}"
    return f"the cache's TTL is {ttl}"


def _summary(c: CacheCheck, f: Facts) -> str:
    text = (f"{_who(c)} answers {c.qname} with {said(c.cache_answer)}, but its upstream {c.hop.upstream} "
            f"(per the Corefile trace) says {said(c.upstream_last)} now")
    if c.staleness is Staleness.UPSTREAM_FAILS:
        text += ": the cache answers past its upstream"
    else:
        text += ": the cache serves an answer its upstream no longer gives"
    states = f.summaries(list(c.stale_addresses))
    return text + (f"; {states}" if states else "") + f"; {_ttl_marker(c)}"


def _remedy(c: CacheCheck) -> str:
    flush = ("restart the NodeLocal DNSCache pod on this node (kubectl -n kube-system delete pod "
             "<the node-local-dns pod on this node>): its cache lives in memory"
             if c.hop.node_cache else
             "restart CoreDNS (kubectl -n kube-system rollout restart deployment coredns): its cache lives in memory")
    where = f"{c.hop.corefile} line {c.hop.cache_line}" if c.hop.cache_line else c.hop.where()
    steps = [f"flush that cache: {flush}",
             f"or shorten how long it keeps answers: `{c.hop.cache_text}` at {where} (a lower TTL"
             + ("; serve_stale's DURATION bounds how long an expired entry is served when the upstream fails, "
                "or drop serve_stale" if c.hop.serve_stale else "") + ")"]
    if c.staleness is Staleness.UPSTREAM_FAILS:
        steps.insert(0, f"fix the upstream {c.hop.upstream} ({said(c.upstream_last)}): once flushed, the cache "
                        "fails honestly (SERVFAIL) until the upstream answers")
    return "; ".join(f"{i}) {s}" for i, s in enumerate(steps, 1))


def _evidence(c: CacheCheck, f: Facts) -> tuple[str, ...]:
    lines = [f"cache {c.cache} ({c.hop.where()}, `{c.hop.cache_text}`): {c.qname} A -> {said(c.cache_answer)}"]
    lines += [f"upstream {c.hop.upstream}:{c.hop.upstream_port} asked directly ({i}): {said(u)}"
              for i, u in enumerate(c.upstream_answers, 1)]
    if c.rotating:
        lines.append("the upstream rotates its answers: only addresses disjoint from both of them count as stale")
    return tuple(lines) + f.probe_lines(list(c.stale_addresses))


def stale_cache_answer(f: Facts) -> Finding | None:
    """A caching hop of the Corefile trace answers what its upstream, asked now, does not."""
    stale = [c for c in f.e.cache_checks if c.staleness is not None]
    if not stale:
        return None
    c = stale[0]
    wrong = list(c.stale_addresses)
    decides = bool(f.in_states(wrong, NOT_SERVING))
    return Finding(
        code=CODE, severity=Severity.CRITICAL if decides else Severity.WARNING, summary=_summary(c, f),
        evidence=_evidence(c, f) + tuple(f"also: {_who(o)}: {said(o.cache_answer)} vs its upstream "
                                         f"{o.hop.upstream}: {said(o.upstream_last)}" for o in stale[1:]),
        remedy=_remedy(c), verdict=Verdict.BAD_ANSWER if decides else None, addresses=tuple(wrong),
        data={**c.data(), "states": {a: str(f.state(a)) for a in wrong},
              "also": [o.data() for o in stale[1:]]})
