"""Answers that belong to another name: a search-suffixed candidate answered instead of the
name meant (issue 28). Pure: a function of the gathered evidence (toolkit.triage.searchhits).

With ``ndots:5`` glibc asks ``api.corp.example.<search domain>`` before ``api.corp.example``
and stops at the first candidate with records (resolv/res_query.c, __res_context_search). A
wildcard under a search domain (the node's domain OpenShift and k3s put in the list, a
corporate or nip.io-style domain: openshift/origin#17316, kubernetes/kubernetes#49113,
k3s-io/k3s#2801, rancher/rancher#6149) or a resolver that rewrites NXDOMAIN (captive portals,
some ISP and enterprise resolvers) answers there, and the application connects to that address.

The evidence that an answer belongs to another name, for a candidate that answered:
- the name itself resolves differently (the rest of the walk, or the references);
- a random name under the same search domain resolves to the same address (the wildcard
  probe; when a random name under the root does too, the resolver rewrites NXDOMAIN);
- a reference says the candidate does not exist, while the name itself resolves.
A reference knows nothing of the cluster's zone: its NXDOMAIN for ``backend.wxwork.svc...``
is no evidence alone (``backend`` means exactly that candidate), so it only confirms where the
name itself resolves too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from toolkit.dns.query import Rcode
from toolkit.dns.walk import PathResult, ServerRole
from toolkit.dns.wildcard import ROOT, WildcardProbe
from toolkit.model import Finding, Severity, Verdict
from toolkit.sysinfo.resolvconf.remedies import search_candidate_remedy
from toolkit.sysinfo.resolvconf.wildcards import cluster_domain
from toolkit.triage.searchhits import SearchEvidence, SearchHit

CODE_CANDIDATE = "answered-by-search-candidate"
CODE_WILDCARD = "wildcard-search-domain"
CODES = frozenset({CODE_CANDIDATE, CODE_WILDCARD})


class AnswerKind(StrEnum):
    """Where the candidate's answer came from, as far as the probes tell."""

    WILDCARD = "wildcard"  # a random name under the search domain resolves to it too
    NXDOMAIN_REWRITE = "nxdomain-rewrite"  # a random name under the root does too: the resolver rewrites NXDOMAIN
    CANDIDATE = "candidate"  # no wildcard seen: a record of the candidate itself (or no probe answered)


class ConfirmedBy(StrEnum):
    """Independent evidence that the answer is another name's (diagnose's ``support`` words)."""

    WILDCARD_PROBE = "wildcard-probe"
    REFERENCE = "reference"


def _overlap(a: Sequence[str], b: Sequence[str]) -> bool:
    return bool(set(a) & set(b))


def _fmt(addrs: Sequence[str]) -> str:
    return ", ".join(addrs) if addrs else "(none)"


@dataclass(frozen=True, kw_only=True)
class AnotherName:
    """One candidate that answered for ``name``, and what says the answer is another name's."""

    name: str  # the name as asked (the name meant)
    candidate: str  # the candidate that answered
    domain: str  # the search domain that made it
    addresses: tuple[str, ...]  # what the candidate answered
    paths: tuple[str, ...]  # "server/transport" of the paths that got it
    itself: tuple[str, ...]  # what the rest of the walk resolved the name to
    itself_as: str | None  # the candidate of the rest of the walk that answered
    itself_refs: tuple[str, ...]  # what the references say the name itself is
    ref_denies: tuple[str, ...]  # references that say the candidate does not exist
    probe: WildcardProbe | None  # the wildcard probe of the domain
    root_probe: WildcardProbe | None  # ... and of the root, when the domain's resolved
    search: tuple[str, ...]

    @property
    def kind(self) -> AnswerKind:
        """Wildcard, rewritten NXDOMAIN, or the candidate's own record."""
        if self.probe is None or not self.probe.resolves or not _overlap(self.probe.addresses, self.addresses):
            return AnswerKind.CANDIDATE
        root = self.root_probe
        if root is not None and root.resolves and _overlap(root.addresses, self.addresses):
            return AnswerKind.NXDOMAIN_REWRITE
        return AnswerKind.WILDCARD

    @property
    def code(self) -> str:
        """The finding code: a wildcard (or rewriting resolver) seen, or just the candidate."""
        return CODE_CANDIDATE if self.kind is AnswerKind.CANDIDATE else CODE_WILDCARD

    @property
    def meant(self) -> tuple[str, ...]:
        """What the name itself resolves to: the path's own walk first, else the references."""
        return self.itself or self.itself_refs

    @property
    def differs(self) -> bool:
        """The name itself resolves, to other addresses than the candidate's."""
        return bool(self.meant) and set(self.meant) != set(self.addresses)

    @property
    def confirmed_by(self) -> tuple[ConfirmedBy, ...]:
        """The independent evidence: the wildcard probe, a reference."""
        out = []
        if self.kind is not AnswerKind.CANDIDATE:
            out.append(ConfirmedBy.WILDCARD_PROBE)
        if self.differs and (self.ref_denies or (self.itself_refs and not _overlap(self.itself_refs, self.addresses))):
            out.append(ConfirmedBy.REFERENCE)
        return tuple(out)

    @property
    def fires(self) -> bool:
        """Evidence enough that the answer is another name's."""
        return self.differs or self.kind is not AnswerKind.CANDIDATE

    # -- wording

    def what(self) -> str:
        """The shape in one sentence: which candidate answered, and what says it is wrong."""
        domain = self.domain.rstrip(".")
        text = (f"{self.name} was answered as {self.candidate} ({_fmt(self.addresses)}), a name the search "
                f"domain {domain} made, not the name meant")
        if self.kind is AnswerKind.NXDOMAIN_REWRITE:
            text += (f"; the resolver rewrites NXDOMAIN: random names under {domain} and under the root "
                     f"resolve to {_fmt(self.root_probe.addresses if self.root_probe else ())} too")
        elif self.kind is AnswerKind.WILDCARD:
            text += (f"; {domain} has a wildcard: a random name under it resolves to "
                     f"{_fmt(self.probe.addresses if self.probe else ())} too")
        if self.itself:
            text += f"; {self.name} itself resolves to {_fmt(self.itself)} (as {self.itself_as})"
        elif self.itself_refs:
            text += f"; the reference resolves {self.name} itself to {_fmt(self.itself_refs)}"
        else:
            text += f"; {self.name} itself does not resolve"
        return text

    def evidence(self) -> tuple[str, ...]:
        """Evidence lines, each probe labelled as such."""
        lines = [f"answered as {self.candidate} by {', '.join(self.paths)}: {_fmt(self.addresses)} "
                 f"(search domain {self.domain.rstrip('.')}, asked before the name itself)"]
        if self.itself:
            lines.append(f"the walk continued past it: {self.name} resolves as {self.itself_as} to {_fmt(self.itself)}")
        else:
            lines.append(f"the walk continued past it: no later candidate of {self.name} resolves")
        lines += [p.describe() for p in (self.probe, self.root_probe) if p is not None]
        lines += [f"reference {r} says {self.candidate} does not exist (NXDOMAIN)" for r in self.ref_denies]
        if self.itself_refs:
            lines.append(f"the reference resolves {self.name} itself to {_fmt(self.itself_refs)}")
        return tuple(lines)

    def data(self) -> dict[str, Any]:  # Any: JSON values for runbooks
        """The finding's data (the JSON contract runbooks read)."""
        return {"name": self.name, "candidate": self.candidate, "domain": self.domain, "kind": self.kind,
                "answered_by": list(self.paths), "itself": list(self.itself), "itself_as": self.itself_as,
                "reference_itself": list(self.itself_refs), "reference_denies": list(self.ref_denies),
                "wildcard_probe": self.probe, "root_probe": self.root_probe,
                "confirmed_by": [str(c) for c in self.confirmed_by]}


def _under(name: str, zone: str | None) -> bool:
    if zone is None:
        return False
    n, z = name.strip(".").lower(), zone.strip(".").lower()
    return n == z or n.endswith("." + z)


def remedy(a: AnotherName) -> str:
    """What to do, in order: the application's name, the pod's ndots, the node's search list,
    the wildcard (or the rewriting resolver) itself."""
    cluster = cluster_domain(a.search)
    if a.kind is AnswerKind.NXDOMAIN_REWRITE:
        last = "or stop the upstream resolver from rewriting NXDOMAIN (forward the cluster DNS to one that does not)"
    elif a.kind is AnswerKind.WILDCARD:
        where = ("the cluster DNS (the CoreDNS block that serves it: `file`, `template`, `hosts`)"
                 if _under(a.domain, cluster) else "its zone")
        last = f"or remove the wildcard *.{a.domain.rstrip('.')} from {where}"
    else:
        last = f"or remove the record {a.candidate}"
    return search_candidate_remedy(name=a.name, domain=a.domain, search=a.search, last=last)


def _ref_denies(paths: Sequence[PathResult], candidate: str) -> tuple[str, ...]:
    """References whose answer for ``candidate`` was NXDOMAIN."""
    low = candidate.lower()
    return tuple(sorted({p.server for p in paths if p.role == ServerRole.REFERENCE and any(
        q.qname.lower() == low and q.rcode == Rcode.NXDOMAIN for q in p.queries)}))


def _one(search: SearchEvidence, hits: Sequence[SearchHit], paths: Sequence[PathResult]) -> AnotherName:
    first = hits[0]
    rests = [h.rest for h in hits if h.rest is not None and h.rest.answered]
    return AnotherName(
        name=search.name, candidate=first.candidate, domain=first.domain,
        addresses=tuple(sorted({a for h in hits for a in h.addresses})),
        paths=tuple(dict.fromkeys(f"{h.server}/{h.transport}" for h in hits)),
        itself=tuple(sorted({a for h in hits for a in h.itself})),
        itself_as=rests[0].hit if rests else None,
        itself_refs=tuple(sorted({a for p in search.meant_refs if p.answered for a in p.addresses})),
        ref_denies=_ref_denies(paths, first.candidate), probe=search.probe_for(first.domain),
        root_probe=search.probe_for(ROOT), search=search.search)


def analyze(search: SearchEvidence | None, paths: Sequence[PathResult]) -> tuple[AnotherName, ...]:
    """One analysis per candidate that answered (the pod's own nameservers' first), firing or not."""
    if search is None:
        return ()
    groups: dict[str, list[SearchHit]] = {}
    for h in sorted(search.hits, key=lambda h: h.role != ServerRole.RESOLV_CONF):
        groups.setdefault(h.candidate.lower(), []).append(h)
    return tuple(_one(search, hs, paths) for hs in groups.values())


def search_findings(search: SearchEvidence | None, paths: Sequence[PathResult]) -> list[Finding]:
    """`resolve`'s view, before any probe of the addresses: the answer belongs to another name
    (critical when a probe or a reference confirms it)."""
    return [Finding(code=a.code, severity=Severity.CRITICAL if a.confirmed_by else Severity.WARNING,
                    summary=a.what(), evidence=a.evidence(), remedy=remedy(a), verdict=Verdict.BAD_ANSWER,
                    data=a.data(), addresses=a.addresses)
            for a in analyze(search, paths) if a.fires]
