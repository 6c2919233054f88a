"""The rules of `diagnose`: each truth is one small rule ``Facts -> Finding | None``, its
texts written with it. The table that orders them (and says what would settle each one's
verdict) is toolkit.triage.table; the dual-stack rules are toolkit.triage.dualstack.

The verdict is the verdict of the highest-priority rule that fires; the order of the code
never decides. The table, row by row, is documented in toolkit/triage/DECISIONS.md and
tested in tests/unit/test_diagnose_rules.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from toolkit.dns.query import QueryError
from toolkit.dns.walk import PathResult, ServerRole
from toolkit.model import Finding, Severity, Verdict, derive_verdict
from toolkit.probe.model import AddressState
from toolkit.triage.evidence import ALIVE, DEAD, NOT_SERVING, Facts
from toolkit.triage.resolve_findings import NEGATIVE, fmt_addresses

SETTLE_REFERENCE = "rerun with --reference IP (an independent resolver for this zone) or --corefile FILE"


def _who(paths: Iterable[PathResult]) -> str:
    return ", ".join(sorted({f"{p.server}/{p.transport}" for p in paths}))


def _why_silent(p: PathResult) -> str:
    """The last error's detail of a path, or its outcome word."""
    last = p.last_error()
    return (last.error_detail if last is not None else None) or str(p.outcome)


def _base(f: Facts, verdict: Verdict) -> Finding | None:
    """The most severe finding already made (resolve, capture...) that argues ``verdict``."""
    found = [x for x in f.base if x.verdict is verdict]
    return max(found, key=lambda x: x.severity.rank) if found else None


# ----------------------------------------------------------------------------- DNS rows

def dns_not_asked(f: Facts) -> Finding | None:
    """The deadline (or SIGINT/SIGTERM) ended every walk of the pod's nameservers before
    they answered: nothing was learned about them either way, so never dns-unavailable."""
    if f.answering or not f.pod_paths or not all(p.outcome is QueryError.DEADLINE for p in f.pod_paths):
        return None
    return Finding(
        code="dns-not-asked", severity=Severity.WARNING,
        summary=f"the time ran out before {_who(f.pod_paths)} answered {f.e.name}: nothing was learned about them",
        evidence=tuple(f"{p.server}/{p.transport}: {_why_silent(p)}" for p in f.pod_paths),
        remedy="rerun with a larger --deadline (and let it finish)", verdict=Verdict.INDETERMINATE, data={})


def cache_broken_hop(f: Facts) -> Finding | None:
    """The pod's nameservers give no answer for the name (at once, or part-way through the
    search list), a server behind them does."""
    if not f.pod_paths or not all(p.no_dns_answer for p in f.pod_paths):
        return None
    from toolkit.triage.pathrules import tcp_forward_blocked

    if tcp_forward_blocked(f) is not None:
        return None  # the server behind fails over TCP too: a TCP block behind it, not the cache
    behind = [p for p in f.paths if p.role != ServerRole.RESOLV_CONF] + list(f.e.behind)
    ok = [p for p in behind if p.answered]
    if not ok:
        return None
    failing = sorted({p.server for p in f.pod_paths})
    return Finding(
        code="cache-broken-hop", severity=Severity.CRITICAL,
        summary=f"{', '.join(failing)} gives no answer, but the server behind it ({_who(ok)}) answers "
        f"{f.e.name}: the cache is the broken hop",
        evidence=tuple(f"{p.server}/{p.transport}: {p.outcome} {fmt_addresses(p.addresses)}" for p in behind),
        remedy="restart the NodeLocal DNSCache pod on this node (kubectl -n kube-system delete pod "
        "-l k8s-app=node-local-dns --field-selector spec.nodeName=NODE); for resilience add "
        "a second nameserver or kubespray's secondary nodelocaldns",
        verdict=Verdict.DNS_UNAVAILABLE, data={"failing": failing, "behind": sorted({p.server for p in ok})})


def pod_dns_silent(f: Facts) -> Finding | None:
    """Every nameserver of the pod is silent, refuses or errs, and nothing behind answers."""
    if not f.pod_paths or not all(p.failed for p in f.pod_paths):
        return None
    return _base(f, Verdict.DNS_UNAVAILABLE) or Finding(
        code="dns-no-answer", severity=Severity.CRITICAL,
        summary=f"no nameserver of the pod gave a DNS answer for {f.e.name}",
        evidence=tuple(f"{p.server}/{p.transport}: {p.outcome}" for p in f.pod_paths),
        remedy="check that the DNS pod/cache runs and that nothing drops port 53 on the way",
        verdict=Verdict.DNS_UNAVAILABLE, data={"servers": sorted({p.server for p in f.pod_paths})})


def path_silent_part_way(f: Facts) -> Finding | None:
    """No path answered, and no DNS error either: a server went silent part-way."""
    if f.answering or not f.paths:
        return None
    outcomes = {p.outcome for p in f.paths if not p.failed}
    if any(o in NEGATIVE for o in outcomes):
        return None
    return _base(f, Verdict.DNS_UNAVAILABLE) or Finding(
        code="dns-no-answer", severity=Severity.CRITICAL, summary=f"the path gave no answer for {f.e.name}",
        evidence=tuple(f"{p.server}/{p.transport}: {p.outcome}" for p in f.paths),
        remedy="a server stopped answering part-way through the search list: see the query table",
        verdict=Verdict.DNS_UNAVAILABLE, data={"outcomes": sorted(map(str, outcomes))})


def error_only_on_path(f: Facts) -> Finding | None:
    """The path answers an rcode error while a reference resolves the name."""
    if f.answering or not f.refs_answering:
        return None
    outcomes = sorted({p.outcome for p in f.paths if not p.failed and p.outcome in NEGATIVE})
    if not outcomes:
        return None
    return Finding(
        code="error-only-on-path", severity=Severity.CRITICAL,
        summary=f"the path answers {'/'.join(o.upper() for o in outcomes)} for {f.e.name} while the "
        f"reference {_who(f.refs_answering)} resolves it to {fmt_addresses(list(f.ref_addrs))}",
        evidence=tuple(f"{p.server}/{p.transport}: {p.outcome}" for p in f.paths),
        remedy="a server block or upstream on the path has its own (wrong) view of this zone: "
        "check stub forwards, `rewrite` and `template` in the Corefiles (podtriage corefile trace)",
        verdict=Verdict.DNS_ERROR, data={"outcomes": [str(o) for o in outcomes]})


def dns_error(f: Facts) -> Finding | None:
    """The path answers only rcode errors (NXDOMAIN, SERVFAIL, REFUSED...)."""
    if f.answering or not any(p.outcome in NEGATIVE for p in f.paths if not p.failed):
        return None
    return _base(f, Verdict.DNS_ERROR) or Finding(
        code="no-address", severity=Severity.CRITICAL, summary=f"no server on the path resolves {f.e.name}",
        evidence=tuple(f"{p.server}/{p.transport}: {p.outcome}" for p in f.paths),
        remedy="see the query table", verdict=Verdict.DNS_ERROR, data={})


# ----------------------------------------------------------------------------- answer rows

def _stale_remedy(f: Facts) -> str:
    stub = next((x for x in f.e.corefile_findings if x.code == "corefile-stub-forward"), None)
    if stub is not None:
        d = stub.data
        return (f"{f.e.name} is answered through {d['corefile']} block {d['block']} (line "
                f"{d.get('file_line') or d['line']}), which forwards it to {', '.join(d['upstreams'])}, a "
                "server whose answers differ from the reference: re-point or delete that block, then "
                "flush the caches (restart CoreDNS and NodeLocal DNSCache)")
    return (f"the zone of {f.e.name} is answered by a server whose answers differ from the reference: "
            "check CoreDNS/NodeLocal server blocks that forward this zone (a stub `forward` to a "
            "retired server; `podtriage corefile trace NAME --corefile ...` names it), re-point or "
            "delete it, then flush the caches (restart CoreDNS and NodeLocal DNSCache)")


def _corefile_data(f: Facts) -> dict[str, Any]:
    stub = next((x for x in f.e.corefile_findings if x.code == "corefile-stub-forward"), None)
    if stub is None:
        return {}
    return {"corefile": {k: stub.data.get(k) for k in ("corefile", "block", "file_line", "upstreams")}}


def stale_answer(f: Facts) -> Finding | None:
    """A path address no reference gives, which does not serve the port: dead, or a live
    host that refuses, filters or drops it while a reference address serves."""
    ref_serving = f.serving(f.ref_addrs)
    wrong = [a for a in f.differ_from_refs
             if f.state(a) in DEAD or (ref_serving and f.state(a) in NOT_SERVING)]
    if not wrong:
        return None
    servers = sorted({s for a in wrong for s in f.path_servers(a)})
    return Finding(
        code="stale-answer", severity=Severity.CRITICAL,
        summary=f"{f.e.name} resolves to {fmt_addresses(wrong)} through {', '.join(servers)}, but the reference "
        f"says {fmt_addresses(list(f.ref_addrs))}; {fmt_addresses(wrong)} does not serve the port "
        f"({f.summaries(wrong)})" + (f" while {fmt_addresses(ref_serving)} does" if ref_serving else ""),
        evidence=f.probe_lines([*wrong, *f.ref_addrs]) + tuple(f"corefile: {h}" for h in f.e.corefile_hops),
        remedy=_stale_remedy(f), verdict=Verdict.BAD_ANSWER, addresses=tuple(wrong),
        data={"servers": servers, "reference_addresses": list(f.ref_addrs),
              "states": {a: str(f.state(a)) for a in wrong}, **_corefile_data(f)})


def dead_answer_from_some_servers(f: Facts) -> Finding | None:
    """An address only some paths (servers, or one transport) give does not serve, while
    another path's address is alive."""
    any_serving = f.serving(f.path_addrs)
    wrong = [a for a in f.given_by_some_paths
             if f.state(a) in DEAD or (any_serving and f.state(a) in NOT_SERVING)]
    alive = [a for a in f.path_addrs if a not in wrong and f.state(a) in ALIVE]
    if not wrong or not alive:
        return None
    wrong_from = {s for a in wrong for s in f.path_servers(a)}
    good_from = {s for a in alive for s in f.path_servers(a)}
    paths = sorted({f"{p.server}/{p.transport}" for p in f.answering if set(wrong) & set(p.addresses)})
    return Finding(
        code="dead-answer-from-some-servers", severity=Severity.CRITICAL,
        summary=f"{fmt_addresses(wrong)} (not serving) come only from {', '.join(paths)}; "
        f"{fmt_addresses(alive)} (alive) from {', '.join(sorted(good_from))}",
        evidence=f.probe_lines([*wrong, *alive]),
        remedy="the servers or transports named first serve stale data for this zone: find their upstream "
        "(podtriage corefile trace) and fix or remove it, then flush the caches",
        verdict=Verdict.BAD_ANSWER, addresses=tuple(wrong),
        data={"dead": wrong, "alive": alive, "paths": paths,
              "dead_from": sorted(wrong_from - good_from) or sorted(wrong_from)})


def reserved_answer(f: Facts) -> Finding | None:
    """An address no service should have (resolve's reserved-answer finding)."""
    return next((x for x in f.base if x.code == "reserved-answer"
                 and x.data.get("address") in f.path_addrs), None)


def answer_differs_both_serve(f: Facts) -> Finding | None:
    """Answers differ, but every differing address serves the port: still a bad answer, at
    warning level; the verdict comes from the rest of the evidence."""
    differ = sorted(set(f.differ_from_refs) | set(f.given_by_some_paths))
    if not differ or f.serving(differ) != differ:
        return None
    return Finding(
        code="answer-differs-both-serve", severity=Severity.WARNING,
        summary=f"{f.e.name}: {fmt_addresses(differ)} differ from the other answers "
        f"({fmt_addresses([a for a in (*f.path_addrs, *f.ref_addrs) if a not in differ])}), "
        "but serve the port too: a bad answer that does not break the application today",
        evidence=f.probe_lines(differ),
        remedy="find the server whose data differs (podtriage corefile trace) before the address moves",
        verdict=None, addresses=tuple(differ), data={"reference_addresses": list(f.ref_addrs)})


# ----------------------------------------------------------------------------- address rows

def host_down(f: Facts) -> Finding | None:
    """Every probed path address is dead and the references give the same ones."""
    probed = f.probed(f.path_addrs)
    dead = f.in_states(probed, DEAD)
    if not dead or dead != probed or not f.ref_addrs or not set(dead) <= set(f.ref_addrs):
        return None
    return Finding(
        code="host-down", severity=Severity.CRITICAL,
        summary=f"{f.e.name} resolves to {fmt_addresses(dead)} on every path and the reference agrees, but "
        f"nothing answers there: {f.summaries(dead)}",
        evidence=f.probe_lines(dead), remedy="the DNS data is right; the host or its service is gone: restore it, "
                              "or remove the record",
        verdict=Verdict.UNREACHABLE_HOST, addresses=tuple(dead))


def dead_answer_unconfirmed(f: Facts) -> Finding | None:
    """Every probed address is dead and nothing independent says whether the answer is right."""
    probed = f.probed(f.path_addrs)
    dead = f.in_states(probed, DEAD)
    if not dead or dead != probed or f.ref_addrs:
        return None
    servers = sorted({p.server for p in f.answering})
    first = next((r.host_unreachable_from for a in dead if (r := f.reports.get(a)) is not None
                  and r.host_unreachable_from), None)
    return Finding(
        code="dead-answer-unconfirmed", severity=Severity.CRITICAL,
        summary=f"{f.e.name} resolves to {fmt_addresses(dead)} (from {', '.join(servers)}) and nothing answers "
        f"there: {f.summaries(dead)}. With one resolver path and no reference this fits a stale "
        "DNS answer as well as a host that is down",
        evidence=f.probe_lines(dead) + ((f"host-unreachable came from {first}",) if first else ()),
        remedy=f"to tell them apart, {SETTLE_REFERENCE}; meanwhile check the zone's forwarders in the Corefiles",
        verdict=Verdict.INDETERMINATE, addresses=tuple(dead), data={"servers": servers})


def some_addresses_dead(f: Facts) -> Finding | None:
    """Every path gives the same set; some members serve, others are dead."""
    dead = f.in_states(f.path_addrs, DEAD)
    serving = f.serving(f.path_addrs)
    if not dead or not serving:
        return None
    return Finding(
        code="some-addresses-dead", severity=Severity.WARNING,
        summary=f"{fmt_addresses(dead)} of {f.e.name} do not answer while {fmt_addresses(serving)} serve: "
        "clients that pick a dead one fail or wait",
        evidence=f.probe_lines(dead), remedy="remove the dead members from the record (or bring them back)",
        verdict=Verdict.UNREACHABLE_HOST, addresses=tuple(dead), data={"serving": serving})


def _address_finding(f: Facts, code: str, state: AddressState, verdict: Verdict, remedy: str) -> Finding | None:
    addrs = f.in_states(f.path_addrs, {state})
    if not addrs:
        return None
    return Finding(code=code, severity=Severity.CRITICAL, summary=f"{f.e.name}: {f.summaries(addrs)}",
                   evidence=f.probe_lines(addrs), remedy=remedy, verdict=verdict, addresses=tuple(addrs))


def port_filtered(f: Facts) -> Finding | None:
    """Path addresses a policy filters (ICMP admin-prohibited, or a silent port on a live host)."""
    return _address_finding(
        f, "port-filtered", AddressState.FILTERED, Verdict.FILTERED,
        "a policy on the way drops or rejects the traffic (ICMP admin-prohibited, or the host "
        "answers while the port stays silent): check NetworkPolicies, security groups and "
        "host firewalls")


def port_closed(f: Facts) -> Finding | None:
    """Path addresses whose host refuses the application's port (only with --port)."""
    if not f.e.ports_given:  # a refusal on the default ports only proves the host is up
        return None
    return _address_finding(
        f, "port-closed", AddressState.PORT_CLOSED, Verdict.PORT_CLOSED,
        "the host is up but nothing listens on the port: check the service's targetPort, "
        "the process and its listen address")


def other_evidence(f: Facts) -> Finding | None:
    """What the resolve, capture and conntrack findings argue (e.g. TCP fails while UDP
    works, a type never answered, the 5-second signature), when no address rule decided."""
    verdict = derive_verdict(f.base)
    return _base(f, verdict) if verdict is not Verdict.OK else None


def address_unverified(f: Facts) -> Finding | None:
    """Probed path addresses that neither answered nor proved dead (errors, nothing sent)."""
    unknown = f.in_states(f.probed(f.path_addrs), {AddressState.UNKNOWN})
    if not unknown:
        return None
    return Finding(
        code="address-unverified", severity=Severity.WARNING,
        summary=f"could not verify {fmt_addresses(unknown)}: {f.summaries(unknown)}",
        evidence=f.probe_lines(unknown),
        remedy="give --port N for the application's port (a TCP answer proves the host is there)",
        verdict=Verdict.INDETERMINATE, addresses=tuple(unknown))
