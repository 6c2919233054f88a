"""`diagnose`: the one-shot triage. Gather every kind of evidence under one deadline
(``gather``), then classify it with the rule table (toolkit.triage.rules, decided in
toolkit.triage.classify; the table is documented in toolkit/triage/DECISIONS.md) and
report (``diagnose_report``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from toolkit.deadline import Deadline
from toolkit.dns.walk import PathResult, Server, ServerRole
from toolkit.errors import best_effort
from toolkit.model import Finding, Report, Severity, Table, to_jsonable
from toolkit.probe.model import AddressReport, AddressState, ProbeResult
from toolkit.triage.behind import ask_behind
from toolkit.triage.classify import Classification, classify
from toolkit.triage.evidence import Evidence
from toolkit.triage.resolve import ResolveResult
from toolkit.triage.resolve_findings import fmt_addresses
from toolkit.triage.side import SideEvidence

if TYPE_CHECKING:
    from toolkit.sysinfo.procs import SockInfo
    from toolkit.corefile.cachechain import CacheHop
    from toolkit.triage.stalecache import CacheCheck

__all__ = ["Classification", "Evidence", "classify", "diagnose_report", "gather", "probe_order"]

DEFAULT_PORTS = (443, 80)


# ----------------------------------------------------------------------------- gathering

MAX_PROBED_ADDRESSES = 8


def gather(name: str, *, resolv_conf: str = "/etc/resolv.conf", servers: Sequence[Server] = (),
           references: Sequence[Server] = (), ports: Sequence[int] = (), corefiles: Sequence[str] = (),
           corefile_roles: Sequence[str] = (),
           deadline: Deadline, query_timeout: float | None = None, capture_s: float = 0.0,
           race_count: int = 0, on_progress: Callable[[str], None] | None = None,
           dns_endpoints: Sequence[str] = ()) -> Evidence:
    """Collect every kind of evidence, concurrently where it can be, under one deadline."""
    from toolkit.triage.resolve import resolve_name

    say = on_progress or (lambda _m: None)
    notes: list[str] = []
    # DNS answers come first: probes need the addresses. Keep the per-query timeout well
    # inside the budget so a silent server leaves time for the probes (which need ~3.5 s
    # to see an ARP failure's ICMP host-unreachable).
    qt = query_timeout if query_timeout is not None else max(0.5, min(2.0, deadline.remaining() / 4))
    side = SideEvidence(deadline, capture_s, dns_endpoints)

    cf_findings, cf_hops, extra_refs, behind_servers, cache_hops = _corefile_evidence(name, corefiles, notes,
                                                                                      corefile_roles)
    refs = list(references) + [s for s in extra_refs if s.address not in {r.address for r in references}]

    say(f"resolving {name}")
    res = resolve_name(name, resolv_conf=resolv_conf, servers=servers, references=refs,
                       deadline=deadline, query_timeout=qt, on_progress=on_progress)
    addresses, unprobed = probe_order(res)
    if unprobed:
        notes.append(f"{len(addresses) + len(unprobed)} addresses answered; probed {MAX_PROBED_ADDRESSES} "
                     f"of them: {fmt_addresses(list(unprobed))} not probed (no evidence either way)")
    behind, patient = ask_behind(res, behind_servers, deadline, qt, say)
    cache_checks = _cache_checks(res, cache_hops, deadline, qt, notes, say)
    app_sockets = _app_sockets(addresses, notes)
    probes = _probe(addresses, tuple(ports) or DEFAULT_PORTS, deadline, notes, on_progress)
    race = _race(res, race_count, deadline, notes, say) if race_count > 0 else []
    ct_findings, processes = side.finish(notes)
    return Evidence(name=name, resolve=res, probes=probes, ports=tuple(ports) or DEFAULT_PORTS,
                    ports_given=bool(ports), unprobed=unprobed, behind=behind, patient=patient,
                    conntrack_findings=tuple(ct_findings + race), corefile_findings=tuple(cf_findings),
                    corefile_hops=tuple(cf_hops), cache_checks=cache_checks, processes=processes,
                    app_sockets=app_sockets, notes=tuple(notes))


def _cache_checks(res: ResolveResult, hops: Sequence[CacheHop], deadline: Deadline, qt: float,
                  notes: list[str], say: Callable[[str], None]) -> tuple[CacheCheck, ...]:
    """With --corefile: each caching hop of the trace asked beside its upstream (a cache
    answering past its upstream, toolkit.triage.stalecache). Optional evidence: a note."""
    if not hops:
        return ()
    from toolkit.triage.stalecache import ask_caches

    found: tuple[CacheCheck, ...] = ()
    with best_effort(notes, "could not compare the caches with their upstreams"):
        found = ask_caches(res, hops, deadline, qt, say)
    return found


def _app_sockets(addresses: Sequence[str], notes: list[str]) -> tuple[SockInfo, ...]:
    """The application's own sockets, read before the probes: a connect() stuck in SYN_SENT
    towards a dead address lasts only until the router's ICMP error (~3 s). psutil trouble
    must not cost the verdict: a note."""
    from toolkit.sysinfo.procs import sockets_to

    found: tuple[SockInfo, ...] = ()
    with best_effort(notes, "could not read the application's sockets"):
        found = tuple(sockets_to(addresses))
    return found


def _probe(addresses: Sequence[str], ports: tuple[int, ...], deadline: Deadline, notes: list[str],
           on_progress: Callable[[str], None] | None) -> tuple[AddressReport, ...]:
    if not addresses:
        return ()
    from toolkit.probe import probe_addresses

    if on_progress:
        on_progress(f"probing {', '.join(addresses)} (ports {', '.join(map(str, ports))})")
    probes = tuple(probe_addresses(addresses, ports, deadline, on_progress=on_progress))
    for rep in probes:
        for lost in rep.lost:
            if lost not in notes:
                notes.append(lost)
    return probes


def probe_order(res: ResolveResult) -> tuple[list[str], tuple[str, ...]]:
    """(addresses to probe, addresses left unprobed). The addresses that decide a verdict
    come first: those only some servers give or that the references do not give, then the
    references' own; then address order (numeric, not text: .20 before .101)."""
    import ipaddress

    path_sets = [set(p.addresses) for p in res.paths if p.role != ServerRole.REFERENCE and p.answered]
    ref = {a for p in res.paths if p.role == ServerRole.REFERENCE and p.answered for a in p.addresses}
    # what the name itself resolves to, when a search-suffixed candidate answered for it
    every = {a for p in (*res.paths, *(res.search.walks if res.search else ())) for a in p.addresses}

    def key(a: str) -> tuple[bool, bool, int, int]:
        contested = any(a not in s for s in path_sets) or bool(ref and a not in ref)
        ip = ipaddress.ip_address(a.split("%")[0])
        return (not contested, a not in ref, ip.version, int(ip))
    ordered = sorted(every, key=key)
    return ordered[:MAX_PROBED_ADDRESSES], tuple(ordered[MAX_PROBED_ADDRESSES:])


def _race(res: ResolveResult, count: int, deadline: Deadline, notes: list[str],
          say: Callable[[str], None]) -> list[Finding]:
    """The conntrack A/AAAA race test against the first resolv.conf nameserver (optional
    evidence: what stops it is a note)."""
    target = next((s.address for s in res.servers if s.role == ServerRole.RESOLV_CONF), None)
    if target is None:
        notes.append("race test: no resolv.conf nameserver to test")
        return []
    found: list[Finding] = []
    with best_effort(notes, "race test not run"):
        from toolkit.conntrack.findings import race_findings
        from toolkit.conntrack.race import race_test

        say(f"conntrack race test against {target} ({count} lookups per mode)")
        result = race_test(target, count=count, deadline=deadline.child(deadline.remaining() * 0.6))
        found = [f for f in race_findings(result) if f.severity is not Severity.INFO]
    return found


_CorefileEvidence = tuple[list[Finding], list[str], list[Server], list[Server], tuple["CacheHop", ...]]


def _corefile_evidence(name: str, corefiles: Sequence[str], notes: list[str],
                       roles: Sequence[str] = ()) -> _CorefileEvidence:
    """(findings, hops, extra references, servers behind the pod's cache, the caching hops)
    from Corefiles, read once: a --corefile may be a pipe (the kubectl plugin's /dev/fd/N)."""
    if not corefiles:
        return [], [], [], [], ()
    from toolkit.corefile.bridge import corefile_evidence, load_trace
    from toolkit.corefile.cachechain import cache_hops

    trace = load_trace(name, corefiles, roles)
    findings, hops, refs, behind = corefile_evidence(name, corefiles, notes, roles, trace=trace)
    return findings, hops, refs, behind, cache_hops(trace)


# ----------------------------------------------------------------------------- report

class _AnswerRow(TypedDict):
    server: str
    role: str
    transport: str
    outcome: str
    answered_as: str | None
    addresses: list[str]


_ProbeRow = TypedDict("_ProbeRow", {
    "address": str, "target": str, "kind": str, "port": int | None, "result": str, "from": str | None,
    "rtt_ms": float | None, "detail": str | None, "privileged": bool})


def diagnose_report(e: Evidence) -> Report:
    """The report of one diagnose run: the classification (verdict, confidence, findings)
    and every piece of evidence under the JSON keys runbooks read."""
    c = classify(e)
    res = e.resolve
    # Servers asked because the pod's failed are shown in their own role.
    answers = [_answer_row(p, p.role) for p in res.paths] + [_answer_row(p, "behind-cache") for p in e.behind]
    probes = [_probe_row(rep.address, pr) for rep in e.probes for pr in rep.probes + rep.control]
    data = {
        "name": e.name,
        "candidates": list(res.candidates),
        "answers": answers,
        "probes": probes,
        "addresses": _address_rows(e),
        "ports": list(e.ports),
        "settle": c.settle,
        "support": list(c.support),
        "results": [dict(to_jsonable(q), role=p.role) for p in res.paths for q in p.queries],
        "processes": list(e.processes),
        "app_sockets": list(e.app_sockets),
        # when a search-suffixed candidate answered: the rest of the walk, the wildcard probes
        "search_hits": res.search,
        # the pod's nameserver asked once more, patiently, when it answered nothing in time
        "patient_query": e.patient,
        # with --corefile: each caching hop asked beside its upstream (stale-cache-answer)
        "cache_checks": [c.data() for c in e.cache_checks],
    }
    events = tuple([{"event": "answer", **a} for a in answers] + [{"event": "probe", **p} for p in probes])
    notes = tuple(e.notes) + c.notes + ((f"to be sure: {c.settle}",) if c.settle else ())
    return Report(command="diagnose", verdict=c.verdict, findings=c.findings, data=data,
                  tables=_tables(answers, probes), subject=e.name, confidence=c.confidence, notes=notes,
                  events=events)


def _answer_row(p: PathResult, role: str) -> _AnswerRow:
    return {"server": p.server, "role": role, "transport": p.transport, "outcome": p.outcome,
            "answered_as": p.hit, "addresses": list(p.addresses)}


def _probe_row(target: str, pr: ProbeResult) -> _ProbeRow:
    return {"address": pr.address, "target": target, "kind": pr.kind, "port": pr.port,
            "result": pr.result, "from": pr.reply_from, "rtt_ms": pr.rtt_ms,
            "detail": pr.detail, "privileged": pr.privileged}


def _tables(answers: Sequence[_AnswerRow], probes: Sequence[_ProbeRow]) -> tuple[Table, ...]:
    return (
        Table("Answers (server x transport)", ("server", "role", "transport", "outcome", "addresses"),
              tuple((a["server"], a["role"], a["transport"], a["outcome"], fmt_addresses(a["addresses"]))
                    for a in answers)),
        Table("Probes", ("target", "kind", "port", "result", "from", "ms", "detail"),
              tuple((p["target"], p["kind"], "" if p["port"] is None else str(p["port"]), p["result"],
                     p["from"] or "", "" if p["rtt_ms"] is None else f"{p['rtt_ms']:.0f}", p["detail"] or "")
                    for p in probes)),
    )


def _address_rows(e: Evidence) -> list[dict[str, Any]]:  # Any: JSON rows (state, route objects)
    """One row per answered address; those beyond the probe limit are 'not-probed'."""
    givers: dict[str, set[str]] = {}
    for p in (*e.resolve.paths, *(e.resolve.search.walks if e.resolve.search else ())):
        for a in p.addresses:
            givers.setdefault(a, set()).add(p.server)
    rows: list[dict[str, Any]] = [
        {"address": r.address, "state": r.state, "summary": r.summary,
         "answered_by": sorted(givers.get(r.address, ())), "route": r.route} for r in e.probes]
    probed = {r.address for r in e.probes}
    rows += [{"address": a, "state": AddressState.NOT_PROBED,
              "summary": f"{a}: not probed (only {MAX_PROBED_ADDRESSES} addresses are probed)",
              "answered_by": sorted(givers[a]), "route": None}
             for a in sorted(givers) if a not in probed]
    return rows
