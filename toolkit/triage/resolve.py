"""`resolve`: ask every resolver on the path the same question and say where they differ.

Orchestration (``resolve_name``) gathers evidence under one deadline; ``resolve_findings``
is a pure function of that evidence, so every rule is unit-testable without a network.
"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.dns.ranges import reserved_reason
from toolkit.dns.walk import AddrInfoResult, PathResult, Server
from toolkit.errors import UsageError
from toolkit.model import Finding, Report, Severity, Table, Verdict, derive_verdict

QTYPES = ("A", "AAAA")
TRANSPORTS = ("udp", "tcp")
NEGATIVE = {"nxdomain": "NXDOMAIN", "servfail": "SERVFAIL", "refused": "REFUSED",
            "formerr": "FORMERR", "notimp": "NOTIMP", "nodata": "NODATA"}
SLOW_MS = 1000.0


@dataclass(frozen=True, kw_only=True)
class ResolveResult:
    name: str
    candidates: tuple[str, ...]
    servers: tuple[Server, ...]
    paths: tuple[PathResult, ...]
    system: AddrInfoResult | None
    resolv_conf_path: str
    qtypes: tuple[str, ...] = QTYPES
    transports: tuple[str, ...] = TRANSPORTS

    @property
    def queries(self):
        return tuple(q for p in self.paths for q in p.queries)

    def paths_of(self, role: str | None = None) -> tuple[PathResult, ...]:
        return tuple(p for p in self.paths if role is None or p.role == role)


def validate_name(name: str) -> str:
    import dns.exception
    import dns.name

    text = name.strip()
    if not text:
        raise UsageError("NAME is empty")
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        pass
    else:
        raise UsageError(f"{text} is an address, not a name",
                         hint="`podtriage resolve` takes a DNS name; probe an address with `podtriage reach`")
    from toolkit.names import NameProblem, check_name

    try:
        check_name(text)  # not a host name: say so, instead of blaming the nameserver
        dns.name.from_text(text)
    except NameProblem as exc:
        raise UsageError(str(exc)) from None
    except dns.exception.DNSException as exc:
        raise UsageError(f"{text!r} is not a valid DNS name: {exc}") from None
    return text


def parse_servers(values: Sequence[str], role: str) -> list[Server]:
    from toolkit.names import NameProblem, parse_endpoint

    out = []
    for raw in values:
        for item in filter(None, (v.strip() for v in raw.split(","))):
            try:
                host, port = parse_endpoint(item)
            except NameProblem as exc:
                raise UsageError(str(exc), hint="give nameservers as addresses: ADDR, ADDR:PORT "
                                                "or [IPv6]:PORT") from None
            out.append(Server(host, role, port))
    return out


def _scoped(address: str) -> str:
    """A resolv.conf nameserver as queried: the %scope kept only where it is needed, on a
    link-local IPv6 address (``nameserver fe80::25:10%eth0``: glibc reaches it through that
    interface; without the scope connect() fails with EINVAL)."""
    bare, sep, scope = address.partition("%")
    try:
        if sep and scope and ipaddress.ip_address(bare).is_link_local:
            return address
    except ValueError:
        pass
    return bare


def resolve_name(name: str, *, resolv_conf: str = "/etc/resolv.conf", servers: Sequence[Server] = (),
                 references: Sequence[Server] = (), qtypes: Sequence[str] = QTYPES,
                 transports: Sequence[str] = TRANSPORTS, deadline: Deadline,
                 query_timeout: float = 2.0, use_resolv_conf: bool = True, search: bool = True,
                 system: bool = True,
                 on_progress: Callable[[str], None] | None = None) -> ResolveResult:
    from toolkit.dns.walk import system_lookup, walk_all
    from toolkit.sysinfo.resolvconf import ResolvConf, load_resolv_conf, search_candidates

    name = validate_name(name)
    conf = load_resolv_conf(resolv_conf) if use_resolv_conf else ResolvConf(path=resolv_conf, nameservers=())
    candidates = search_candidates(name, conf) if search else (name.rstrip(".") + ".",)
    all_servers = _unique_servers([*(Server(_scoped(a), "resolv.conf") for a in conf.nameservers),
                                   *servers, *references])
    if not all_servers:
        raise UsageError("no nameserver to ask",
                         hint="give --server IP, or check the resolv.conf (podtriage resolvconf)")
    if on_progress:
        on_progress(f"asking {len(all_servers)} server(s) over {', '.join(transports)} for "
                    f"{len(candidates)} candidate name(s), deadline {deadline.remaining():.1f} s")
    sys_box: list[AddrInfoResult] = []
    import threading

    sys_thread = None
    if system:
        # getaddrinfo runs beside the walks, under the same deadline.
        sys_thread = threading.Thread(target=lambda: sys_box.append(
            system_lookup(name, deadline.timeout())), daemon=True)
        sys_thread.start()
    # The path's servers walk the search list as glibc would. A reference is an independent
    # resolver (often an authoritative server that REFUSEs names outside its zones), so it
    # is asked for the very FQDN the path resolved, not walked through the search list.
    path_servers = [s for s in all_servers if s.role != "reference"]
    ref_servers = [s for s in all_servers if s.role == "reference"]
    # Most often the path resolves the name as written (the last candidate with ndots:5),
    # so the references are asked that at once, beside the path's walk; only when the path
    # answered for another candidate are they asked again, for that one.
    as_is = name.rstrip(".") + "."
    ref_paths: tuple[PathResult, ...] = ()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="refs") as refs_pool:
        early = refs_pool.submit(walk_all, ref_servers, transports, [as_is], qtypes, deadline,
                                 query_timeout, on_progress) if ref_servers else None
        paths = walk_all(path_servers, transports, candidates, qtypes, deadline, query_timeout, on_progress)
        if early is not None:
            ref_paths = early.result()
    hits = list(dict.fromkeys(p.hit for p in paths if p.hit))
    if ref_servers and hits and hits != [as_is]:
        ref_paths = walk_all(ref_servers, transports, hits, qtypes, deadline, query_timeout, on_progress)
    paths += ref_paths
    if sys_thread is not None:
        # getaddrinfo() is the application's view, not a measurement we control: when every
        # server is silent glibc keeps retrying for timeout x attempts per name. Give it one
        # query timeout beyond the walks, not the whole deadline.
        t_wait = time.monotonic()
        sys_thread.join(deadline.timeout(query_timeout))
        if not sys_box:
            waited = time.monotonic() - t_wait
            sys_box.append(AddrInfoResult(error=f"timeout: getaddrinfo() had not returned {waited:.1f} s "
                                                "after the last DNS answer (glibc is still retrying)"))
    return ResolveResult(
        name=name, candidates=tuple(candidates), servers=tuple(all_servers), paths=paths,
        system=sys_box[0] if sys_box else None, resolv_conf_path=conf.path, qtypes=tuple(qtypes),
        transports=tuple(transports))


def _unique_servers(servers: Sequence[Server]) -> list[Server]:
    out: list[Server] = []
    seen: set[tuple[str, int]] = set()
    for s in servers:
        if (s.address, s.port) not in seen:
            seen.add((s.address, s.port))
            out.append(s)
    return out


# ----------------------------------------------------------------------------- findings

def _label(server: str, role: str) -> str:
    return f"{server} [reference]" if role == "reference" else server


def fmt_addresses(addrs: Sequence[str]) -> str:
    return ", ".join(addrs) if addrs else "(none)"


def _server_failures(res: ResolveResult) -> list[Finding]:
    out: list[Finding] = []
    by_server: dict[tuple[str, str], list[PathResult]] = defaultdict(list)
    for p in res.paths:
        by_server[(p.server, p.role)].append(p)
    for (server, role), paths in by_server.items():
        failed = [p for p in paths if p.failed and p.outcome != "deadline"]
        working = [p for p in paths if not p.failed]
        if not failed:
            continue
        evidence = []
        for p in failed:
            q = p.last_error()
            detail = q.error_detail if q and q.error_detail else p.outcome
            evidence.append(f"{server} over {p.transport}: {p.outcome} ({detail})")
        kinds = {p.outcome for p in failed}
        transports = ", ".join(p.transport for p in failed)
        if role == "reference":
            out.append(Finding(
                code="reference-unavailable", severity=Severity.WARNING,
                summary=f"reference {server} gave no answer over {transports}: it cannot vouch for the answers",
                evidence=tuple(evidence), remedy="check that the reference server is reachable from this namespace",
                verdict=None, data={"server": server, "transports": [p.transport for p in failed]}))
            continue
        if working:
            ok_t = ", ".join(p.transport for p in working)
            code = f"{failed[0].transport}-fails-{working[0].transport}-works"
            out.append(Finding(
                code=code, severity=Severity.WARNING,
                summary=f"{server} answers over {ok_t} but not over {transports} ({', '.join(sorted(kinds))})",
                evidence=tuple(evidence),
                remedy="allow TCP 53 end to end (NetworkPolicy, firewalls): truncated answers and "
                "force_tcp forwarders need it" if failed[0].transport == "tcp" else
                "UDP 53 is blocked or dropped on the way while TCP works: check NetworkPolicies, "
                "NOTRACK/conntrack rules and the DNS server's UDP listener",
                verdict=Verdict.DNS_UNAVAILABLE, data={"server": server, "failed": [p.transport for p in failed],
                                          "working": [p.transport for p in working]}))
            continue
        kind = sorted(kinds)[0]
        if kind == "timeout":
            code, what = "server-timeout", "does not answer (silence until the timeout)"
            remedy = ("the server or the path to it drops queries: check that the DNS pod/cache "
                      "runs, and NetworkPolicies/firewalls on the way")
        elif kind in ("port-unreachable", "refused", "reset"):
            code, what = "server-refused", "refuses (nothing listens on port 53: ICMP port-unreachable or TCP RST)"
            remedy = ("the host is up but no DNS server listens: restart the DNS server/cache "
                      "(NodeLocal DNSCache pod, CoreDNS)")
        elif kind in ("host-unreachable", "net-unreachable", "admin-prohibited", "ttl-exceeded"):
            code, what = "server-unreachable", f"is unreachable ({kind})"
            remedy = "the server address is not reachable from this namespace: check routes, the NodeLocal interface and policies"
        else:
            code, what = "server-error", f"failed ({kind})"
            remedy = "see the evidence"
        out.append(Finding(code=code, severity=Severity.CRITICAL, summary=f"nameserver {server} {what} over {transports}",
                           evidence=tuple(evidence), remedy=remedy, verdict=Verdict.DNS_UNAVAILABLE,
                           data={"server": server, "role": role, "transports": [p.transport for p in failed],
                            "error": kind}))
    return out


def _answer_sets(paths: Sequence[PathResult], qtype: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """server -> its answer set for qtype (union of transports: transport differences are
    reported on their own)."""
    sets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in paths:
        if p.answered:
            sets[(p.server, p.role)].update(p.answers_for(qtype))
    return {k: tuple(sorted(v)) for k, v in sets.items() if v}


def _disagreements(res: ResolveResult) -> list[Finding]:
    out: list[Finding] = []
    for qtype in res.qtypes:
        sets = _answer_sets(res.paths, qtype)
        path_sets = {k: v for k, v in sets.items() if k[1] != "reference"}
        ref_sets = {k: v for k, v in sets.items() if k[1] == "reference"}
        distinct = set(path_sets.values())
        if len(distinct) > 1:
            disjoint = any(not set(a) & set(b) for a in distinct for b in distinct if a != b)
            ev = tuple(f"{_label(*k)} answers {qtype} {fmt_addresses(v)}" for k, v in path_sets.items())
            out.append(Finding(
                code="answers-disagree", severity=Severity.CRITICAL if disjoint else Severity.WARNING,
                summary=f"nameservers disagree on {qtype} for {res.name}" + ("" if disjoint else
                                                                     " (overlapping sets: round robin or a partial copy)"),
                evidence=ev, remedy="find the server whose data is stale: compare SOA serials and the upstream each "
                    "one forwards this zone to (podtriage corefile trace)",
                verdict=Verdict.BAD_ANSWER, data={"qtype": qtype, "answers": {k[0]: list(v) for k, v in path_sets.items()}}))
        if ref_sets:
            refs = set(ref_sets.values())
            for (server, role), addrs in path_sets.items():
                if addrs in refs:
                    continue
                disjoint = all(not set(addrs) & set(r) for r in refs)
                ev = [f"{server} ({role}) answers {qtype} {fmt_addresses(addrs)}"]
                ev += [f"{k[0]} [reference] answers {qtype} {fmt_addresses(v)}" for k, v in ref_sets.items()]
                soas = _negative_soas(res)
                ev += [f"SOA seen via {s}: {soa}" for s, soa in soas.items()]
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
    # Same server, different transports: e.g. a UDP path via one upstream and TCP via another.
    by_server: dict[tuple[str, str], dict[str, tuple[str, ...]]] = defaultdict(dict)
    for p in res.paths:
        if p.answered:
            by_server[(p.server, p.role)][p.transport] = p.addresses
    for (server, role), per_t in by_server.items():
        if len(set(per_t.values())) > 1:
            out.append(Finding(
                code="transport-answers-differ", severity=Severity.WARNING,
                summary=f"{server} gives different answers over {' and '.join(per_t)}",
                evidence=tuple(f"{t}: {fmt_addresses(a)}" for t, a in per_t.items()),
                remedy="UDP and TCP reach different backends or upstreams: check forwarders with force_tcp/prefer_udp",
                verdict=Verdict.BAD_ANSWER, data={"server": server, "answers": {t: list(a) for t, a in per_t.items()}}))
    return out


def _negative_soas(res: ResolveResult) -> dict[str, str]:
    out = {}
    for q in res.queries:
        if q.soa and q.server not in out:
            out[q.server] = f"zone {q.soa.owner} serial {q.soa.serial} mname {q.soa.mname}"
    return out


def _partial_failures(res: ResolveResult) -> list[Finding]:
    """A server that answers one record type and never another (dns-failure-catalog F10:
    something drops AAAA). Our A and AAAA leave from separate sockets, so a loss here is not
    the conntrack A/AAAA race, which only loses parallel queries from one socket."""
    out = []
    for p in res.paths:
        if p.failed:
            continue
        by_type: dict[str, list] = defaultdict(list)
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
                verdict=None if p.role == "reference" else Verdict.DNS_UNAVAILABLE,
                data={"server": p.server, "transport": p.transport, "qtype": qtype, "error": kind}))
    return out


def _rcode_findings(res: ResolveResult) -> list[Finding]:
    # Only DNS answers take part: a path that ended in silence is a server problem
    # (reported by _server_failures / _partial_failures), not an rcode.
    answering = [p for p in res.paths if not p.failed
                 and (p.outcome == "answer" or p.outcome in NEGATIVE)]
    if not answering:
        return []
    by_outcome: dict[str, list[PathResult]] = defaultdict(list)
    for p in answering:
        by_outcome[p.outcome].append(p)
    negatives = {o: ps for o, ps in by_outcome.items() if o != "answer"}
    if not negatives:
        return []
    def who(ps): return sorted({f"{_label(p.server, p.role)}/{p.transport}" for p in ps})
    ev = [f"{NEGATIVE.get(o, o.upper())}: {', '.join(who(ps))}" for o, ps in negatives.items()]
    if "answer" in by_outcome:
        ev.append(f"answer: {', '.join(who(by_outcome['answer']))}")
        neg_paths = [p for ps in negatives.values() for p in ps]
        only_ref = all(p.role == "reference" for p in neg_paths)
        return [Finding(
            code="rcode-disagreement", severity=Severity.WARNING if only_ref else Severity.CRITICAL,
            summary=f"some servers answer {res.name}, others say "
            f"{'/'.join(NEGATIVE.get(o, o.upper()) for o in negatives)}",
            evidence=tuple(ev),
            remedy="a server on the path returns an error for a name others resolve: check the zone's "
            "forwarders (stub blocks, `rewrite`, `template`, ACLs) on the servers named",
            verdict=None if only_ref else Verdict.DNS_ERROR,
            data={"outcomes": {o: who(ps) for o, ps in by_outcome.items()}})]
    outcome = next(iter(negatives)) if len(negatives) == 1 else "mixed"
    code = {"nxdomain": "nxdomain", "servfail": "servfail", "refused": "refused",
            "nodata": "nodata"}.get(outcome, "no-address")
    if code == "nodata":
        return [Finding(code="nodata", severity=Severity.WARNING,
                        summary=f"{res.name} exists but has no {'/'.join(res.qtypes)} record on any server",
                        evidence=tuple(ev), remedy="check the record type the application needs", verdict=Verdict.DNS_ERROR,
                        data={"outcomes": {o: who(ps) for o, ps in by_outcome.items()}})]
    return [Finding(code=code, severity=Severity.CRITICAL,
                    summary=f"no server resolves {res.name}: {', '.join(NEGATIVE.get(o, o.upper()) for o in negatives)} "
                    f"for every candidate", evidence=tuple(ev),
                    remedy="check the spelling and the search domains; NXDOMAIN everywhere means the record "
                    "does not exist for these servers, SERVFAIL means their upstream fails",
                    verdict=Verdict.DNS_ERROR, data={"outcomes": {o: who(ps) for o, ps in by_outcome.items()}})]


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
    tc = sorted({q.server for q in res.queries if q.transport == "udp" and q.truncated})
    if not tc:
        return []
    return [Finding(code="truncated", severity=Severity.WARNING if "tcp" not in res.transports else Severity.INFO,
                    summary=f"UDP answers were truncated (TC) by {', '.join(tc)}: clients must retry over TCP",
                    evidence=(), remedy="make sure TCP 53 works end to end (see the tcp results); musl before 1.2.4 "
                        "has no TCP fallback", verdict=None, data={"servers": tc})]


def _chain(res: ResolveResult) -> list[Finding]:
    for p in res.paths:
        if p.role != "resolv.conf" or p.hit is None:
            continue
        idx = res.candidates.index(p.hit) if p.hit in res.candidates else 0
        wasted = [q for q in p.queries if q.qname != p.hit]
        if idx == 0 or not wasted:
            return []
        nx = sum(1 for q in wasted if q.rcode == "NXDOMAIN")
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
                    summary=f"{len(slow)} answers took over {SLOW_MS:.0f} ms (worst {worst.latency_ms:.0f} ms from {worst.server})",
                    evidence=tuple(f"{q.server}/{q.transport} {q.qname} {q.qtype}: {q.latency_ms:.0f} ms" for q in slow[:8]),
                    remedy="a slow upstream or retries behind the server: check its upstreams and load",
                    verdict=None, data={"count": len(slow)})]


def _system(res: ResolveResult) -> list[Finding]:
    s = res.system
    if s is None:
        return []
    dns_addrs = {a for p in res.paths if p.role != "reference" for a in p.addresses}
    if s.addresses and dns_addrs and not set(s.addresses) <= dns_addrs:
        extra = sorted(set(s.addresses) - dns_addrs)
        return [Finding(code="system-differs", severity=Severity.WARNING,
                        summary=f"getaddrinfo() returns {fmt_addresses(extra)}, which no nameserver answered",
                        evidence=(f"getaddrinfo: {fmt_addresses(s.addresses)}", f"DNS: {fmt_addresses(sorted(dns_addrs))}"),
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
    findings = [*_server_failures(res), *_partial_failures(res), *_disagreements(res), *_reserved(res),
                *_rcode_findings(res), *_truncation(res), *_slow(res), *_chain(res), *_system(res)]
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def resolve_report(res: ResolveResult) -> Report:
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
    tables = (
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
    }
    events = tuple({"event": "query", **_result_row(q, p)} for p in res.paths for q in p.queries)
    return Report("resolve", verdict, tuple(findings), data, tables, subject=res.name, events=events)


def _result_row(q, p: PathResult) -> dict:
    from toolkit.model import to_jsonable

    row = to_jsonable(q)
    row["role"] = p.role
    return row
