"""The opt-in lint of the search list against the network (``resolvconf --probe-wildcards``):
does a search domain answer *any* name?

With ``ndots:5`` glibc asks ``NAME.<search domain>`` before ``NAME`` itself and stops at the
first candidate with records (resolv/res_query.c, __res_context_search). A wildcard under a
search domain (``*.DOMAIN``, RFC 4592) therefore answers every name with fewer dots than
ndots, external names included (openshift/origin#17316, k3s-io/k3s#2801, rancher/rancher#6149),
and so does a nameserver that rewrites NXDOMAIN into an address. The probes are sent by the
caller (toolkit.triage.resolvconf, one random name per domain through the first nameserver);
this module only reads what they got. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.model import Finding, Severity, Verdict
from toolkit.sysinfo.resolvconf.findings import finding
from toolkit.sysinfo.resolvconf.record import ResolvConf


@dataclass(frozen=True, kw_only=True)
class DomainProbe:
    """What a random name under one search domain got (``domain`` "." for the root)."""

    domain: str
    qname: str
    server: str
    outcome: str  # the rcode word, NODATA, or why no answer came
    addresses: tuple[str, ...] = ()

    def line(self) -> str:
        """One evidence line, labelled as the probe it is."""
        got = ", ".join(self.addresses) if self.addresses else self.outcome
        where = "the root" if self.domain == "." else self.domain
        return (f"wildcard probe (a random name nobody created, under {where}): {self.qname} A "
                f"via {self.server} -> {got}")


def cluster_domain(search: Sequence[str]) -> str | None:
    """The cluster domain of a kubelet-written search list (``NS.svc.CLUSTER svc.CLUSTER
    CLUSTER``, then the node's own domains), or None."""
    for d in search:
        labels = d.strip(".").lower().split(".")
        if "svc" in labels[:2] and labels.index("svc") + 1 < len(labels):
            return ".".join(labels[labels.index("svc") + 1:])
    return None


def _outside(domain: str, cluster: str | None) -> bool:
    d = domain.strip(".").lower()
    return cluster is None or not (d == cluster or d.endswith("." + cluster))


def _first_asked(hits: Sequence[DomainProbe], candidates: Sequence[str]) -> str:
    """For a name (its candidates in glibc's order): the candidate the first answering domain
    makes, which answers before the name itself is ever asked."""
    for c in candidates:
        low = c.rstrip(".").lower()
        for p in hits:
            if low.endswith("." + p.domain.strip(".").lower()):
                return f"; the name is asked as {c} first and gets {', '.join(p.addresses)}"
    return ""


def wildcard_findings(conf: ResolvConf, probes: Sequence[DomainProbe],
                      candidates: Sequence[str] = ()) -> list[Finding]:
    """One finding per search domain whose random name resolves (and, when a random name
    under the root resolves too, the nameserver rewrites NXDOMAIN: one finding for all).
    With ``candidates`` (a name's, in glibc's order) the first finding says which candidate
    answers that name."""
    root = next((p for p in probes if p.domain == "." and p.addresses), None)
    hits = [p for p in probes if p.domain != "." and p.addresses]
    if not hits:
        return []
    cluster = cluster_domain(conf.search)
    first = _first_asked(hits, candidates)
    if root is not None:
        return [finding(
            "search-domain-wildcard", Severity.WARNING,
            f"the nameserver {root.server} rewrites NXDOMAIN: random names under "
            f"{', '.join(p.domain for p in hits)} and under the root resolve (to {', '.join(root.addresses)}): "
            f"with ndots:{conf.ndots} every name with fewer dots is answered as NAME.{hits[0].domain} instead of "
            "failing over to the name itself" + first, _remedy(hits[0].domain, cluster, rewrite=True),
            evidence=[p.line() for p in probes], verdict=Verdict.BAD_ANSWER, kind="nxdomain-rewrite",
            domains=[p.domain for p in hits], addresses=sorted({a for p in hits for a in p.addresses}))]
    return [finding(
        "search-domain-wildcard", Severity.WARNING,
        f"search domain {p.domain} answers any name: a random name under it resolves to "
        f"{', '.join(p.addresses)}; with ndots:{conf.ndots} every name with fewer dots is answered as "
        f"NAME.{p.domain} before it is asked as written"
        + (" (a domain of the node's, which the kubelet copies into every pod's search list)"
           if _outside(p.domain, cluster) and cluster else "") + (first if i == 0 else ""),
        _remedy(p.domain, cluster, rewrite=False), evidence=[p.line()], verdict=Verdict.BAD_ANSWER,
        kind="wildcard", domain=p.domain, addresses=list(p.addresses)) for i, p in enumerate(hits)]


def _remedy(domain: str, cluster: str | None, *, rewrite: bool) -> str:
    steps = ["give the application fully qualified names with a trailing dot (api.corp.example.)",
             "or lower ndots for the pod (dnsConfig options ndots:2): a name with that many dots is asked as is first"]
    if _outside(domain, cluster):
        steps.append(f"or remove {domain} from the node's search list (kubelet --resolv-conf pointing at a file "
                     "without it)")
    steps.append("or stop the nameserver's upstream from rewriting NXDOMAIN" if rewrite
                 else f"or remove the wildcard *.{domain}")
    return "; ".join(f"{i}) {s}" for i, s in enumerate(steps, 1))
