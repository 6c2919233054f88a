"""The findings of `resolve`: where the resolvers on the path differ or fail, as a pure
function of the evidence (toolkit.triage.resolve.ResolveResult), and the resolve report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from toolkit.dns.query import QueryError, QueryResult, Rcode, Soa, Transport
from toolkit.dns.ranges import reserved_reason
from toolkit.dns.walk import PathOutcome, PathResult, ServerRole
from toolkit.model import Finding, Report, Severity, Table, Verdict, derive_verdict, to_jsonable
from toolkit.triage.another_name import analyze, search_findings
from toolkit.triage.resolve import ResolveResult

# The path outcomes that are a DNS answer without an address, as people write them. Keyed
# by the outcome's word: QueryError.REFUSED (a TCP RST to one of a path's queries, after the
# others answered) shares the word "refused" with the rcode and is looked up alike.
NEGATIVE: dict[str, str] = {
    PathOutcome.NXDOMAIN: "NXDOMAIN", PathOutcome.SERVFAIL: "SERVFAIL", PathOutcome.REFUSED: "REFUSED",
    PathOutcome.FORMERR: "FORMERR", PathOutcome.NOTIMP: "NOTIMP", PathOutcome.NODATA: "NODATA"}
SLOW_MS = 1000.0


def _label(server: str, role: ServerRole) -> str:
    return f"{server} [reference]" if role == ServerRole.REFERENCE else server


def fmt_addresses(addrs: Sequence[str]) -> str:
    """Addresses for a sentence: comma-separated, or "(none)"."""
    return ", ".join(addrs) if addrs else "(none)"


_ServerKey = tuple[str, ServerRole]
# Why a server gave no answer at all, grouped as the finding codes group them.
_REFUSING = frozenset({QueryError.PORT_UNREACHABLE, QueryError.REFUSED, QueryError.RESET})
_UNREACHABLE = frozenset({QueryError.HOST_UNREACHABLE, QueryError.NET_UNREACHABLE,
                          QueryError.ADMIN_PROHIBITED, QueryError.TTL_EXCEEDED})


def _server_failures(res: ResolveResult) -> list[Finding]:
    """Servers that gave no DNS answer on some or all of their paths (the deadline cutting a
    walk short is nobody's fault: not counted)."""
    out: list[Finding] = []
    by_server: dict[_ServerKey, list[PathResult]] = defaultdict(list)
    for p in res.paths:
        by_server[(p.server, p.role)].append(p)
    for (server, role), paths in by_server.items():
        failed = [p for p in paths if p.failed and p.outcome is not QueryError.DEADLINE]
        working = [p for p in paths if not p.failed]
        if not failed:
            continue
        evidence = tuple(_failure_line(server, p) for p in failed)
        if working:
            out.append(_transport_fails(server, role, failed, working, evidence))
        elif role == ServerRole.REFERENCE:
            out.append(_reference_unavailable(server, failed, evidence))
        else:
            out.append(_server_down(server, role, failed, evidence))
    return out


def _failure_line(server: str, p: PathResult) -> str:
    q = p.last_error()
    detail = q.error_detail if q and q.error_detail else p.outcome
    return f"{server} over {p.transport}: {p.outcome} ({detail})"


def _reference_unavailable(server: str, failed: Sequence[PathResult], evidence: tuple[str, ...]) -> Finding:
    transports = ", ".join(p.transport for p in failed)
    return Finding(
        code="reference-unavailable", severity=Severity.WARNING,
        summary=f"reference {server} gave no answer over {transports}: it cannot vouch for the answers",
        evidence=evidence, remedy="check that the reference server is reachable from this namespace",
        verdict=None, data={"server": server, "transports": [p.transport for p in failed]})


def _transport_fails(server: str, role: ServerRole, failed: Sequence[PathResult], working: Sequence[PathResult],
                     evidence: tuple[str, ...]) -> Finding:
    """One transport fails where another works (udp-fails-tcp-works, tcp-fails-udp-works). A
    reference that answers over one transport still vouches for the answers: no verdict of
    its own (it is not the pod's path), but evidence that the transport is blocked on the way
    (toolkit.triage.pathrules reads it)."""
    kinds = {p.outcome for p in failed}
    ok_t = ", ".join(p.transport for p in working)
    transports = ", ".join(p.transport for p in failed)
    return Finding(
        code=f"{failed[0].transport}-fails-{working[0].transport}-works", severity=Severity.WARNING,
        summary=f"{_label(server, role)} answers over {ok_t} but not over {transports} "
        f"({', '.join(sorted(kinds))})",
        evidence=evidence,
        remedy="allow TCP 53 end to end (NetworkPolicy, firewalls): truncated answers and "
        "force_tcp forwarders need it" if failed[0].transport == Transport.TCP else
        "UDP 53 is blocked or dropped on the way while TCP works: check NetworkPolicies, "
        "NOTRACK/conntrack rules and the DNS server's UDP listener",
        verdict=None if role == ServerRole.REFERENCE else Verdict.DNS_UNAVAILABLE,
        data={"server": server, "role": role, "failed": [p.transport for p in failed],
              "working": [p.transport for p in working]})


def _server_down(server: str, role: ServerRole, failed: Sequence[PathResult], evidence: tuple[str, ...]) -> Finding:
    """No path of the server got an answer: silent, refusing, unreachable or failing."""
    kind = sorted({p.outcome for p in failed})[0]
    if kind is QueryError.TIMEOUT:
        code, what = "server-timeout", "does not answer (silence until the timeout)"
        remedy = ("the server or the path to it drops queries: check that the DNS pod/cache "
                  "runs, and NetworkPolicies/firewalls on the way")
    elif kind in _REFUSING:
        code, what = "server-refused", "refuses (nothing listens on port 53: ICMP port-unreachable or TCP RST)"
        remedy = ("the host is up but no DNS server listens: restart the DNS server/cache "
                  "(NodeLocal DNSCache pod, CoreDNS)")
    elif kind in _UNREACHABLE:
        code, what = "server-unreachable", f"is unreachable ({kind})"
        remedy = ("the server address is not reachable from this namespace: check routes, the NodeLocal "
                  "interface and policies")
    else:
        code, what = "server-error", f"failed ({kind})"
        remedy = "see the evidence"
    transports = ", ".join(p.transport for p in failed)
    return Finding(code=code, severity=Severity.CRITICAL, summary=f"nameserver {server} {what} over {transports}",
                   evidence=evidence, remedy=remedy, verdict=Verdict.DNS_UNAVAILABLE,
                   data={"server": server, "role": role, "transports": [p.transport for p in failed],
                         "error": kind})


def _answer_sets(paths: Sequence[PathResult], qtype: str) -> dict[_ServerKey, tuple[str, ...]]:
    """server -> its answer set for qtype (union of transports: transport differences are
    reported on their own)."""
    sets: dict[_ServerKey, set[str]] = defaultdict(set)
    for p in paths:
        if p.answered:
            sets[(p.server, p.role)].update(p.answers_for(qtype))
    return {k: tuple(sorted(v)) for k, v in sets.items() if v}


def _disagreements(res: ResolveResult) -> list[Finding]:
    """Answers that differ: between the path's servers, from the reference, between transports."""
    out: list[Finding] = []
    for qtype in res.qtypes:
        sets = _answer_sets(res.paths, qtype)
        path_sets = {k: v for k, v in sets.items() if k[1] != ServerRole.REFERENCE}
        ref_sets = {k: v for k, v in sets.items() if k[1] == ServerRole.REFERENCE}
        out += _servers_disagree(res, qtype, path_sets)
        if ref_sets:
            out += _differs_from_reference(res, qtype, path_sets, ref_sets)
    return out + _transports_differ(res)


def _servers_disagree(res: ResolveResult, qtype: str,
                      path_sets: Mapping[_ServerKey, tuple[str, ...]]) -> list[Finding]:
    distinct = set(path_sets.values())
    if len(distinct) <= 1:
        return []
    disjoint = any(not set(a) & set(b) for a in distinct for b in distinct if a != b)
    ev = tuple(f"{_label(*k)} answers {qtype} {fmt_addresses(v)}" for k, v in path_sets.items())
    return [Finding(
        code="answers-disagree", severity=Severity.CRITICAL if disjoint else Severity.WARNING,
        summary=f"nameservers disagree on {qtype} for {res.name}" + ("" if disjoint else
                                                             " (overlapping sets: round robin or a partial copy)"),
        evidence=ev, remedy="find the server whose data is stale: compare SOA serials and the upstream each "
            "one forwards this zone to (podtriage corefile trace)",
        verdict=Verdict.BAD_ANSWER, data={"qtype": qtype, "answers": {k[0]: list(v) for k, v in path_sets.items()}})]


def _differs_from_reference(res: ResolveResult, qtype: str, path_sets: Mapping[_ServerKey, tuple[str, ...]],
                            ref_sets: Mapping[_ServerKey, tuple[str, ...]]) -> list[Finding]:
    out = []
    refs = set(ref_sets.values())
    for (server, role), addrs in path_sets.items():
        if addrs in refs:
            continue
        disjoint = all(not set(addrs) & set(r) for r in refs)
        ev = [f"{server} ({role}) answers {qtype} {fmt_addresses(addrs)}"]
        ev += [f"{k[0]} [reference] answers {qtype} {fmt_addresses(v)}" for k, v in ref_sets.items()]
        ev += [f"SOA seen via {via}: {soa}" for via, soa in _negative_soas(res).items()]
        out.append(Finding(
            code="answer-differs-from-reference", severity=Severity.CRITICAL if disjoint else Severity.WARNING,
            summary=f"{server} answers {res.name} {qtype} with {fmt_addresses(addrs)}; the reference says "
            f"{' / '.join(fmt_addresses(r) for r in refs)}",
            evidence=tuple(ev),
            remedy=f"the path behind {server} serves different data than the reference: check the "
            "CoreDNS/NodeLocal server blocks that forward this zone (a stub `forward` to a "
            "retired server), then flush the caches",
            verdict=Verdict.BAD_ANSWER,
            data={"qtype": qtype, "server": server, "answers": list(addrs),
                  "reference_answers": {k[0]: list(v) for k, v in ref_sets.items()}}))
    return out


def _transports_differ(res: ResolveResult) -> list[Finding]:
    """Same server, different transports: e.g. a UDP path via one upstream and TCP via another."""
    out = []
    by_server: dict[_ServerKey, dict[Transport, tuple[str, ...]]] = defaultdict(dict)
    for p in res.paths:
        if p.answered:
            by_server[(p.server, p.role)][p.transport] = p.addresses
    for (server, _role), per_t in by_server.items():
        if len(set(per_t.values())) > 1:
            out.append(Finding(
                code="transport-answers-differ", severity=Severity.WARNING,
                summary=f"{server} gives different answers over {' and '.join(per_t)}",
                evidence=tuple(f"{t}: {fmt_addresses(a)}" for t, a in per_t.items()),
                remedy="UDP and TCP reach different backends or upstreams: check forwarders with force_tcp/prefer_udp",
                verdict=Verdict.BAD_ANSWER, data={"server": server, "answers": {t: list(a) for t, a in per_t.items()}}))
    return out


def _encloses(zone: str, name: str) -> bool:
    z, n = zone.rstrip(".").lower(), name.rstrip(".").lower()
    return not z or n == z or n.endswith("." + z)


def _negative_soas(res: ResolveResult) -> dict[str, str]:
    """server -> the SOA of the zone of the name it answered: of the SOAs its negative answers
    carried, the closest enclosing zone of its answered candidate. CoreDNS's kubernetes plugin
    puts the cluster zone's SOA into the search walk's NXDOMAINs (plugin/kubernetes: every
    negative answer under its zones), which says nothing about the zone the name came from;
    the answered name's own NODATA (its AAAA) carries that zone's SOA."""
    best: dict[str, Soa] = {}
    for p in res.paths:
        target = p.hit or res.name.rstrip(".") + "."
        for q in p.queries:
            if q.soa is None or not _encloses(q.soa.owner, target):
                continue
            have = best.get(p.server)
            if have is None or len(have.owner.rstrip(".")) < len(q.soa.owner.rstrip(".")):
                best[p.server] = q.soa
    return {server: f"zone {soa.owner} serial {soa.serial} mname {soa.mname}" for server, soa in best.items()}


def _partial_failures(res: ResolveResult) -> list[Finding]:
    """A server that answers one record type and never another (dns-failure-catalog F10:
    something drops AAAA). Our A and AAAA leave from separate sockets, so a loss here is not
    the conntrack A/AAAA race, which only loses parallel queries from one socket."""
    out = []
    for p in res.paths:
        if p.failed:
            continue
        by_type: dict[str, list[QueryResult]] = defaultdict(list)
        for q in p.queries:
            by_type[q.qtype].append(q)
        ok_types = [t for t, qs in by_type.items() if any(q.answered for q in qs)]
        for qtype, qs in by_type.items():
            if any(q.answered for q in qs) or not ok_types:
                continue
            kind = qs[-1].error or "no answer"
            out.append(Finding(
                code=f"{qtype.lower()}-unanswered", severity=Severity.WARNING,
                summary=f"{_label(p.server, p.role)} answers {'/'.join(ok_types)} over {p.transport} but never "
                f"{qtype} ({kind}): every lookup waits out the resolver timeout (5 s by default)",
                evidence=tuple(f"{q.qname} {q.qtype}: {q.error_detail or q.outcome()}" for q in qs[:4])
                + ("each query left from its own socket, so this is not the conntrack A/AAAA race",),
                remedy=f"a server or middlebox on the path drops {qtype} queries: make it answer (NODATA "
                "at least); meanwhile glibc >= 2.36 `options no-aaaa`, or a CoreDNS `template` "
                "answering NOERROR for that type",
                verdict=None if p.role == ServerRole.REFERENCE else Verdict.DNS_UNAVAILABLE,
                data={"server": p.server, "transport": p.transport, "qtype": qtype, "error": kind}))
    return out


_Outcome = PathOutcome | QueryError
# The finding code when every negative path agrees on one outcome.
_NEGATIVE_CODES: dict[str, str] = {PathOutcome.NXDOMAIN: "nxdomain", PathOutcome.SERVFAIL: "servfail",
                   PathOutcome.REFUSED: "refused", PathOutcome.NODATA: "nodata"}


def _who(paths: Sequence[PathResult]) -> list[str]:
    return sorted({f"{_label(p.server, p.role)}/{p.transport}" for p in paths})


def _negative_word(o: _Outcome) -> str:
    return NEGATIVE.get(o, o.upper())


def _rcode_findings(res: ResolveResult) -> list[Finding]:
    """Paths that answered with an rcode error: some against others, or all of them."""
    # Only DNS answers take part: a path that ended in silence is a server problem
    # (reported by _server_failures / _partial_failures), not an rcode.
    answering = [p for p in res.paths if not p.failed
                 and (p.outcome is PathOutcome.ANSWER or p.outcome in NEGATIVE)]
    by_outcome: dict[_Outcome, list[PathResult]] = defaultdict(list)
    for p in answering:
        by_outcome[p.outcome].append(p)
    negatives = {o: ps for o, ps in by_outcome.items() if o is not PathOutcome.ANSWER}
    if not negatives:
        return []
    ev = [f"{_negative_word(o)}: {', '.join(_who(ps))}" for o, ps in negatives.items()]
    outcomes = {o: _who(ps) for o, ps in by_outcome.items()}
    if PathOutcome.ANSWER in by_outcome:
        ev.append(f"answer: {', '.join(_who(by_outcome[PathOutcome.ANSWER]))}")
        only_ref = all(p.role == ServerRole.REFERENCE for ps in negatives.values() for p in ps)
        if only_ref and _denied_candidates_only(res, [p for ps in negatives.values() for p in ps]):
            return []  # the references deny a candidate that answered for another name: said there
        return [Finding(
            code="rcode-disagreement", severity=Severity.WARNING if only_ref else Severity.CRITICAL,
            summary=f"some servers answer {res.name}, others say {'/'.join(_negative_word(o) for o in negatives)}",
            evidence=tuple(ev),
            remedy="a server on the path returns an error for a name others resolve: check the zone's "
            "forwarders (stub blocks, `rewrite`, `template`, ACLs) on the servers named",
            verdict=None if only_ref else Verdict.DNS_ERROR, data={"outcomes": outcomes})]
    only = next(iter(negatives)) if len(negatives) == 1 else None
    code = _NEGATIVE_CODES.get(only, "no-address") if only is not None else "no-address"
    if only is PathOutcome.NODATA:
        return [Finding(code="nodata", severity=Severity.WARNING,
                        summary=f"{res.name} exists but has no {'/'.join(res.qtypes)} record on any server",
                        evidence=tuple(ev), remedy="check the record type the application needs",
                        verdict=Verdict.DNS_ERROR, data={"outcomes": outcomes})]
    return [Finding(code=code, severity=Severity.CRITICAL,
                    summary=f"no server resolves {res.name}: {', '.join(_negative_word(o) for o in negatives)} "
                    f"for every candidate", evidence=tuple(ev),
                    remedy="check the spelling and the search domains; NXDOMAIN everywhere means the record "
                    "does not exist for these servers, SERVFAIL means their upstream fails",
                    verdict=Verdict.DNS_ERROR, data={"outcomes": outcomes})]


def _denied_candidates_only(res: ResolveResult, refs: Sequence[PathResult]) -> bool:
    """The references' negative answers are all about search candidates whose answer belongs
    to another name (toolkit.triage.another_name reports them, as its evidence)."""
    firing = {a.candidate.lower() for a in analyze(res.search, res.paths) if a.fires}
    return bool(firing) and all(q.qname.lower() in firing for p in refs for q in p.queries)


def _reserved(res: ResolveResult) -> list[Finding]:
    hits: dict[str, set[str]] = defaultdict(set)
    for p in res.paths:
        for a in p.addresses:
            if reserved_reason(a, name=res.name):
                hits[a].add(_label(p.server, p.role))
    return [Finding(code="reserved-answer", severity=Severity.CRITICAL,
                    summary=f"{res.name} resolves to {a}, an address no service should have",
                    evidence=(reserved_reason(a, name=res.name) or "", f"answered by {', '.join(sorted(s))}"),
                    remedy="fix the record (or the stub/rewrite/hosts entry that produces it)",
                    verdict=Verdict.BAD_ANSWER, data={"address": a, "servers": sorted(s)})
            for a, s in hits.items()]


def _truncation(res: ResolveResult) -> list[Finding]:
    tc = sorted({q.server for q in res.queries if q.transport == Transport.UDP and q.truncated})
    if not tc:
        return []
    severity = Severity.WARNING if Transport.TCP not in res.transports else Severity.INFO
    return [Finding(code="truncated", severity=severity,
                    summary=f"UDP answers were truncated (TC) by {', '.join(tc)}: clients must retry over TCP",
                    evidence=(), remedy="make sure TCP 53 works end to end (see the tcp results); musl before 1.2.4 "
                        "has no TCP fallback", verdict=None, data={"servers": tc})]


def _chain(res: ResolveResult) -> list[Finding]:
    for p in res.paths:
        if p.role != ServerRole.RESOLV_CONF or p.hit is None:
            continue
        idx = res.candidates.index(p.hit) if p.hit in res.candidates else 0
        wasted = [q for q in p.queries if q.qname != p.hit]
        if idx == 0 or not wasted:
            return []
        nx = sum(1 for q in wasted if q.rcode == Rcode.NXDOMAIN)
        sev = Severity.WARNING if idx >= 2 else Severity.INFO
        return [Finding(code="search-nxdomain-chain", severity=sev,
                        summary=f"{len(wasted)} queries ({nx} NXDOMAIN) went out before {p.hit} answered: "
                        f"candidate {idx + 1} of {len(res.candidates)}",
                        evidence=tuple(f"{q.qname} {q.qtype}: {q.outcome()}" for q in wasted[:12]),
                        remedy="lower ndots (dnsConfig options ndots:2) or use the fully qualified name with a "
                        "trailing dot; CoreDNS `autopath` also shortens the chain",
                        verdict=None, data={"hit": p.hit, "wasted_queries": len(wasted), "nxdomain": nx})]
    return []


def _slow(res: ResolveResult) -> list[Finding]:
    slow = [q for q in res.queries if q.latency_ms and q.latency_ms > SLOW_MS and q.answered]
    if not slow:
        return []
    worst = max(slow, key=lambda q: q.latency_ms or 0)
    return [Finding(code="slow-answer", severity=Severity.WARNING,
                    summary=f"{len(slow)} answers took over {SLOW_MS:.0f} ms "
                    f"(worst {worst.latency_ms:.0f} ms from {worst.server})",
                    evidence=tuple(f"{q.server}/{q.transport} {q.qname} {q.qtype}: {q.latency_ms:.0f} ms"
                                   for q in slow[:8]),
                    remedy="a slow upstream or retries behind the server: check its upstreams and load",
                    verdict=None, data={"count": len(slow)})]


def _system(res: ResolveResult) -> list[Finding]:
    s = res.system
    if s is None:
        return []
    dns_addrs = {a for p in res.paths if p.role != ServerRole.REFERENCE for a in p.addresses}
    if s.addresses and dns_addrs and not set(s.addresses) <= dns_addrs:
        extra = sorted(set(s.addresses) - dns_addrs)
        return [Finding(code="system-differs", severity=Severity.WARNING,
                        summary=f"getaddrinfo() returns {fmt_addresses(extra)}, which no nameserver answered",
                        evidence=(f"getaddrinfo: {fmt_addresses(s.addresses)}",
                                  f"DNS: {fmt_addresses(sorted(dns_addrs))}"),
                        remedy="an /etc/hosts entry, nscd/sssd cache or another NSS source overrides DNS: "
                        "check /etc/hosts and nsswitch.conf (podtriage resolvconf --name NAME)",
                        verdict=None, data={"getaddrinfo": list(s.addresses)})]
    if s.error and dns_addrs:
        return [Finding(code="system-fails", severity=Severity.WARNING,
                        summary=f"getaddrinfo() fails ({s.error}) although a nameserver answers",
                        evidence=(), remedy="the application's resolver path differs from the servers asked: "
                            "check nsswitch.conf and the search list", verdict=None, data={"error": s.error})]
    return []


def resolve_findings(res: ResolveResult) -> list[Finding]:
    """Every rule, in the order a reader should see them. Pure."""
    findings = [*_server_failures(res), *_partial_failures(res), *_disagreements(res),
                *search_findings(res.search, res.paths), *_reserved(res),
                *_rcode_findings(res), *_truncation(res), *_slow(res), *_chain(res), *_system(res)]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def resolve_report(res: ResolveResult) -> Report:
    """The report of one resolve: its findings, their verdict (indeterminate when nothing
    answered at all), the path and query tables and the JSON keys."""
    findings = resolve_findings(res)
    verdict = derive_verdict(findings)
    if verdict is Verdict.OK and not any(p.answered for p in res.paths):
        verdict = Verdict.INDETERMINATE
    rows = []
    for p in res.paths:
        worst = max((q.latency_ms or 0.0) for q in p.queries) if p.queries else 0.0
        rows.append((p.server, p.role, p.transport, p.outcome, p.hit or "-", fmt_addresses(p.addresses),
                     f"{worst:.1f}"))
    qrows = [(q.server, q.transport, q.qtype, q.qname, q.outcome(), fmt_addresses(q.answers),
              "" if q.ttl is None else str(q.ttl),
              "" if q.latency_ms is None else f"{q.latency_ms:.1f}", " ".join(q.flags))
             for q in res.queries]
    tables: tuple[Table, ...] = (
        Table("Paths (server x transport, search list walked as glibc does)",
              ("server", "role", "transport", "outcome", "answered as", "addresses", "max ms"), tuple(rows)),
        Table("Queries", ("server", "transport", "type", "qname", "result", "answers", "ttl", "ms", "flags"),
              tuple(qrows)),
    )
    if res.system is not None:
        tables += (Table("getaddrinfo() in this namespace", ("addresses", "error", "ms"),
                         ((fmt_addresses(res.system.addresses), res.system.error or "",
                           "" if res.system.latency_ms is None else f"{res.system.latency_ms:.1f}"),)),)
    data: Mapping[str, object] = {
        "name": res.name,
        "candidates": list(res.candidates),
        "resolv_conf": res.resolv_conf_path,
        "servers": [{"address": s.address, "port": s.port, "role": s.role} for s in res.servers],
        "results": [_result_row(q, p) for p in res.paths for q in p.queries],
        "paths": [{"server": p.server, "role": p.role, "transport": p.transport, "outcome": p.outcome,
                   "hit": p.hit, "addresses": list(p.addresses)} for p in res.paths],
        "getaddrinfo": res.system,
        # when a search-suffixed candidate answered: the rest of the walk, the wildcard probes
        "search_hits": res.search,
    }
    events = tuple({"event": "query", **_result_row(q, p)} for p in res.paths for q in p.queries)
    return Report(command="resolve", verdict=verdict, findings=tuple(findings),
                  data=data, tables=tables, subject=res.name, events=events)


def _result_row(q: QueryResult, p: PathResult) -> dict[str, object]:
    row: dict[str, object] = to_jsonable(q)
    row["role"] = p.role
    return row
