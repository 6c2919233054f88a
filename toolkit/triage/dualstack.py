"""Dual-stack rows of the diagnose rule table (toolkit.triage.rules.RULES): what an answer
means depends on the pod's own address families.

- ``aaaa-unroutable``: the name has AAAA records and this pod has no IPv6 route (an IPv4-only
  pod in a cluster whose DNS still hands out AAAA: k3s-io/k3s#5849). A client that tries the
  AAAA fails at once with ENETUNREACH ("network is unreachable"). ``a-unroutable`` is the
  mirror: A answers in an IPv6-only pod without DNS64.
- ``family-fails``: in a dual-stack pod one family's addresses all fail while the other's
  serve: a name that works "sometimes", or only after a delay.

Weighed as a client would: glibc (and musl) sort getaddrinfo() results by RFC 6724, so an
address without a route goes last (rule 1, "avoid unusable destinations") and, with an IPv6
route, glibc's precedence table puts IPv6 (ULA too) before IPv4. Measured in the lab: the
IPv4-only pod's getaddrinfo() returns 192.168.50.20 before fd00:50::20, the dual-stack pod's
fd00:50::77 before 192.168.50.20. When diagnose saw getaddrinfo()'s own order it uses that.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from toolkit.model import Finding, Severity, Verdict
from toolkit.probe.model import AddressState
from toolkit.triage.evidence import DEAD, Facts
from toolkit.triage.resolve_findings import fmt_addresses
from toolkit.sysinfo.routes import RouteKind

TEMPLATE_REMEDY = ("filter AAAA in CoreDNS with the `template` plugin (in the server block: "
                   "`template ANY AAAA { rcode NOERROR }` answers NODATA, so no client is handed an "
                   "address family it cannot route), or fix the cluster's IP families (dual-stack "
                   "Services/pods: `ipFamilyPolicy`, the CNI's IPv6 pool) so the pod gets an IPv6 route")


def _family(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


def no_route(f: Facts, address: str) -> bool:
    """The pod has no route for the address (RTM_GETROUTE: ENETUNREACH / unreachable)."""
    rep = f.reports.get(address)
    return rep is not None and rep.route is not None and rep.route.kind is RouteKind.UNREACHABLE


def client_order(f: Facts, addrs: Collection[str]) -> list[str]:
    """The order a glibc client tries ``addrs``: getaddrinfo()'s own order when diagnose saw
    it, else RFC 6724 as glibc applies it (unroutable last, then IPv6 before IPv4)."""
    sys_res = f.e.resolve.system
    seen = list(sys_res.ordered) if sys_res is not None else []
    known = [a for a in seen if a in addrs]
    rest = sorted((a for a in addrs if a not in known), key=lambda a: (no_route(f, a), ":" not in a))
    return known + rest


DNS64_REMEDY = ("an IPv6-only pod reaches IPv4-only names only through DNS64 + NAT64: enable "
                "CoreDNS's `dns64` plugin (prefix 64:ff9b::/96) with a NAT64 gateway on the way, or "
                "give the pods IPv4 too (dual-stack `ipFamilyPolicy`, the CNI's IPv4 pool)")


def _unroutable(f: Facts, v6: bool = True) -> tuple[list[str], list[str]]:
    """(the family's path addresses this pod has no route to, the other family's serving ones)."""
    gone = [a for a in f.path_addrs if (":" in a) == v6 and no_route(f, a)]
    other_serving = [a for a in f.serving(f.path_addrs) if (":" in a) != v6]
    return gone, other_serving


def _route_lines(f: Facts, addrs: Sequence[str]) -> tuple[str, ...]:
    """Evidence: the route lookup of each address."""
    lines = []
    for a in addrs:
        rep = f.reports.get(a)
        if rep is not None and rep.route is not None:
            lines.append(f"route to {a}: {rep.route.describe()}")
    return tuple(lines)


def _unroutable_finding(f: Facts, gone: list[str], serving: list[str], v6: bool = True) -> Finding:
    servers = sorted({s for a in gone for s in f.path_servers(a)})
    order = client_order(f, list(f.path_addrs))
    rr, fam, other = ("AAAA", "IPv6", "IPv4") if v6 else ("A", "IPv4", "IPv6")
    if serving:
        severity = Severity.WARNING
        tail = (f"; glibc sorts it last (RFC 6724 rule 1; getaddrinfo() order here: "
                f"{fmt_addresses(order)}) and connects to {fmt_addresses(serving)} over {other}, which "
                "serves, but a client that dials it itself or tries only one family fails")
    else:
        severity = Severity.CRITICAL
        tail = f"; no {other} address of the name serves, so every client fails"
    return Finding(
        code="aaaa-unroutable" if v6 else "a-unroutable", severity=severity,
        summary=f"{f.e.name} has {rr} {fmt_addresses(gone)} (from {', '.join(servers)}) but this pod has no "
        f"{fam} route: a client that tries it fails at once with ENETUNREACH (\"network is "
        f"unreachable\"){tail}",
        evidence=_route_lines(f, gone) + tuple(f"{a} from {', '.join(f.path_servers(a))}" for a in gone),
        remedy=TEMPLATE_REMEDY if v6 else DNS64_REMEDY, verdict=Verdict.BAD_ANSWER, addresses=tuple(gone),
        data={"servers": servers, "family": fam.lower(), "pod_families": [other.lower()],
              "serving": serving, "client_order": order})


def aaaa_unroutable(f: Facts) -> Finding | None:
    """Answers of a family this pod has no route for (AAAA in an IPv4-only pod, A in an
    IPv6-only one), and no address of the other family serves."""
    for v6 in (True, False):
        gone, serving = _unroutable(f, v6)
        if gone and not serving:
            return _unroutable_finding(f, gone, serving, v6)
    return None


def aaaa_unroutable_beside_a(f: Facts) -> Finding | None:
    """As aaaa_unroutable, while an address of the other family serves: glibc clients fall
    back, others fail; a bad answer at warning level."""
    for v6 in (True, False):
        gone, serving = _unroutable(f, v6)
        if gone and serving:
            return _unroutable_finding(f, gone, serving, v6)
    return None


_REMEDY = {
    AddressState.FILTERED: "a policy rejects or drops {fam} to the host (ICMP admin-prohibited or "
                           "silence): check NetworkPolicies and the {fam} firewall (ip6tables/nft ip6) on the way",
    AddressState.PORT_CLOSED: "the service does not listen on its {fam} address: bind it to [::] "
                              "(or 0.0.0.0) as well, or remove the {rr} record",
}
_DEAD_REMEDY = ("the {rr} record points where no host answers: fix or remove the {rr} record (or "
                "bring the host's {fam} address back); the {other_rr} record is fine")


def family_fails(f: Facts) -> Finding | None:
    """A dual-stack pod (a route for both families): every probed address of one family fails
    (dead, filtered, or refusing the given port) while the other family's serve."""
    v4 = [a for a in f.path_addrs if ":" not in a]
    v6 = [a for a in f.path_addrs if ":" in a]
    if not v4 or not v6:
        return None
    bad_states = DEAD | {AddressState.FILTERED} | ({AddressState.PORT_CLOSED} if f.e.ports_given else set())
    for dead_fam, live_fam in ((v6, v4), (v4, v6)):
        probed = f.probed(dead_fam)
        if not probed or any(no_route(f, a) for a in probed):
            continue  # no route for the family: aaaa-unroutable's case
        failing = f.in_states(probed, bad_states)
        serving = f.serving(live_fam)
        if failing != probed or not serving:
            continue
        fam, other = _family(failing[0]), _family(serving[0])
        rr, other_rr = ("AAAA", "A") if ":" in failing[0] else ("A", "AAAA")
        states = {f.state(a) for a in failing}
        if AddressState.FILTERED in states:
            verdict, remedy = Verdict.FILTERED, _REMEDY[AddressState.FILTERED]
        elif AddressState.PORT_CLOSED in states and not states & DEAD:
            verdict, remedy = Verdict.PORT_CLOSED, _REMEDY[AddressState.PORT_CLOSED]
        else:
            verdict, remedy = Verdict.UNREACHABLE_HOST, _DEAD_REMEDY
        order = client_order(f, list(f.path_addrs))
        first = order[0] if order else None
        tried_first = first in failing
        how = (f"getaddrinfo() here returns {first} first (glibc prefers {fam} when the pod has a "
               f"route for it, RFC 6724), so every connection waits for the {fam} attempt to fail "
               f"(~3 s for a failed ARP/ND, the connect timeout for a silent drop) before falling back "
               f"to {other}, and a client that tries only the first address fails"
               if tried_first else
               f"clients try {first} ({other}) first and succeed; a client that prefers {fam} or tries "
               f"every address waits for the {fam} failure")
        return Finding(
            code="family-fails", severity=Severity.CRITICAL if tried_first else Severity.WARNING,
            summary=f"{fam} fails for {f.e.name} in this dual-stack pod: {f.summaries(failing)}; "
            f"{other} {fmt_addresses(serving)} serves. {how}",
            evidence=f.probe_lines([*failing, *serving]),
            remedy=remedy.format(fam=fam, rr=rr, other_rr=other_rr), verdict=verdict, addresses=tuple(failing),
            data={"family": fam.lower(), "serving": serving,
                  "serving_family": other.lower(), "states": {a: str(f.state(a)) for a in failing},
                  "client_order": order, "tried_first": first})
    return None
