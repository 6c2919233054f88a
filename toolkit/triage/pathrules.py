"""diagnose rows for a pod nameserver that is alive but gives no answer for the name: its
upstream is silent, or TCP to the upstream is blocked while the forwarders on the path use TCP.

Both were found on the lab's real stack (issue 21): NodeLocal DNSCache (node-cache's CoreDNS)
forwards a cache miss to the kube-dns Service with ``force_tcp``; CoreDNS forwards with the
transport it was asked on unless its ``forward`` says ``force_tcp`` or ``prefer_udp``
(coredns plugin/pkg/proxy/connect.go, Proxy.Connect: ``proto = state.Proto()``). So a TCP
block at the upstream fails every lookup through the cache while UDP to the upstream works;
and a silent upstream makes the cache answer SERVFAIL only after its forwarders give up (6 s
in the lab), which a short per-query timeout takes for a dead cache.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from toolkit.dns.query import QueryError, QueryResult, Transport
from toolkit.dns.walk import PathOutcome, PathResult, ServerRole
from toolkit.model import Finding, Severity, Verdict
from toolkit.triage.evidence import Facts


def _no_dns_answer(p: PathResult) -> bool:
    """The walk ended without a DNS answer for its last question (silence, refusal...), at
    once or after answering earlier candidates; the deadline cutting it is nobody's fault."""
    return p.no_dns_answer and p.outcome is not QueryError.DEADLINE


def _fails(p: PathResult) -> bool:
    """No answer for the name: silence (or a refusal), or SERVFAIL (a forwarder gave up; the
    caches keep that SERVFAIL a few seconds: CoreDNS's cache plugin, ``servfail`` 5 s)."""
    return _no_dns_answer(p) or p.outcome is PathOutcome.SERVFAIL


def _unanswered(f: Facts) -> list[PathResult]:
    """The pod's own paths, when none of them answered the name (else empty)."""
    pod = [p for p in f.paths if p.role == ServerRole.RESOLV_CONF]
    return [] if not pod or any(p.answered for p in pod) else pod


def _patient_line(q: QueryResult | None) -> tuple[str, ...]:
    if q is None:
        return ()
    took = f" after {q.latency_ms / 1000:.1f} s" if q.latency_ms is not None else ""
    what = q.outcome() + took if q.answered else f"still no answer ({q.error_detail or q.error})"
    return (f"asked once more, patiently: {q.qname} {q.qtype} to {q.server}/{q.transport}: {what}",)


def _hop_lines(f: Facts, only_tcp: bool = False) -> tuple[str, ...]:
    return tuple(f"corefile: {h}" for h in f.e.corefile_hops if not only_tcp or " over tcp" in h)


def _path_lines(paths: Sequence[PathResult]) -> tuple[str, ...]:
    out = []
    for p in paths:
        last = p.last_error()
        why = (last.error_detail if last is not None else None) or str(p.outcome)
        out.append(f"{p.server}/{p.transport}: {p.outcome} for {last.qname if last else '?'} ({why})")
    return tuple(out)


def tcp_forward_blocked(f: Facts) -> Finding | None:
    """The pod's nameservers answer the name neither over UDP nor over TCP, while a server
    beyond them (a reference, --server, a server behind the cache) answers over UDP and not
    over TCP: the forwarders between them carry the query over TCP."""
    pod = _unanswered(f)
    if not any(p.transport == Transport.UDP for p in pod) or not all(_fails(p) for p in pod):
        return None
    per: dict[str, dict[Transport, PathResult]] = defaultdict(dict)
    for p in (*f.e.resolve.paths, *f.e.behind):
        if p.role != ServerRole.RESOLV_CONF:
            per[p.server][p.transport] = p
    blocked = sorted(s for s, t in per.items() if Transport.UDP in t and Transport.TCP in t
                     and t[Transport.UDP].answered and _fails(t[Transport.TCP]))
    if not blocked:
        return None
    cache = ", ".join(sorted({p.server for p in pod}))
    where = ", ".join(blocked)
    last = _last_tcp_hop(f)
    return Finding(
        code="forward-tcp-blocked", severity=Severity.CRITICAL,
        summary=f"{cache} gives no answer for {f.e.name} over UDP or TCP, while {where} answers it over UDP "
        "but not over TCP: the forwarders on the path carry every query over TCP (NodeLocal DNSCache "
        "forwards with force_tcp, and CoreDNS forwards with the transport it was asked on), so TCP "
        f"blocked at or behind {where}" + (f" (the Corefiles' last hop: {last} over tcp)" if last else "")
        + " fails every lookup through the cache that leaves the cluster, although UDP works",
        evidence=_path_lines([per[s][Transport.TCP] for s in blocked]) + _path_lines(pod)
        + _hop_lines(f, only_tcp=True) + _patient_line(f.e.patient),
        remedy=f"allow TCP 53 to {last or where} on the way from the nodes and the CoreDNS pods (firewalls, "
        "security groups, egress NetworkPolicies; truncated answers need it anyway); or let the hop use "
        "UDP: `prefer_udp` in CoreDNS's `forward` (UDP even when asked over TCP, TCP only for a truncated "
        "answer), or remove `force_tcp` from NodeLocal DNSCache's `forward`",
        verdict=Verdict.DNS_UNAVAILABLE, data={"servers": sorted({p.server for p in pod}), "tcp_blocked": blocked,
                                               "last_tcp_hop": last})


def _last_tcp_hop(f: Facts) -> str | None:
    """The target of the Corefile trace's last hop when it forwards over TCP (the upstream)."""
    import re

    found = [m.group(1) for h in f.e.corefile_hops if (m := re.search(r"-> (\S+?) over tcp", h))]
    return found[-1] if found else None


def cache_upstream_silent(f: Facts) -> Finding | None:
    """The pod's nameserver is alive (it answered other queries, or answered an rcode when
    asked patiently) but its answer for the name does not come in time: the hop behind it is
    silent, not the cache."""
    pod = _unanswered(f)
    timed = [p for p in pod if p.outcome is QueryError.TIMEOUT]
    pat = f.e.patient
    if not timed or (pat is not None and pat.has_answers) or tcp_forward_blocked(f) is not None:
        return None  # (a TCP block on the way explains the silence: that row says so)
    alive = [q for p in pod for q in p.queries if q.answered]
    if not alive and (pat is None or not pat.answered):
        return None
    servers = sorted({p.server for p in timed})
    said = f"it answered {len(alive)} other queries of the walk ({alive[0].qname} {alive[0].outcome()})" \
        if alive else f"asked once more it answered {pat.outcome() if pat else '?'}"
    late = ""
    if pat is not None and pat.answered and pat.latency_ms is not None:
        late = (f"; asked once more with a longer timeout it answered {pat.outcome()} after "
                f"{pat.latency_ms / 1000:.1f} s: its forwarder gave up on the upstream")
    silent_refs = sorted({p.server for p in f.refs} - {p.server for p in f.refs if not _no_dns_answer(p)})
    return Finding(
        code="upstream-silent", severity=Severity.CRITICAL,
        summary=f"{', '.join(servers)} is alive ({said}) but gives no answer for {f.e.name} in time: the hop "
        "behind it is silent (NodeLocal DNSCache forwards to the kube-dns Service, CoreDNS to the "
        "cluster's upstream), not the cache" + late
        + (f"; the reference {', '.join(silent_refs)} does not answer either" if silent_refs else ""),
        evidence=_path_lines(timed) + _patient_line(pat) + _hop_lines(f)
        + tuple(f"{p.server} [reference]/{p.transport}: {p.outcome}" for p in f.refs if _no_dns_answer(p)),
        remedy="the cache and CoreDNS run; the upstream they forward this name to does not answer: check the "
        "upstream resolvers of CoreDNS's `forward` (its `.` block) and the way from the CoreDNS pods to "
        "them (egress NetworkPolicies, firewalls); names of the cluster's own zone still resolve"
        + ("" if f.e.corefile_hops else " (--corefile names each hop)"),
        verdict=Verdict.DNS_UNAVAILABLE,
        data={"servers": servers, "alive_answers": len(alive),
              "patient": {"qname": pat.qname, "outcome": pat.outcome(), "latency_ms": pat.latency_ms}
              if pat is not None else None, "silent_references": silent_refs})
