"""`diagnose`'s verdict: run the rule table, take the highest-priority finding's verdict, and
grade the confidence by how much independent evidence agrees (never by which rule ran).

Confidence (DESIGN.md "Verdicts"): the kinds of support are a reference that answered, a
Corefile trace, more than one path (server x transport) observed, a DNS failure seen by our
own queries, addresses that answered directly (the host itself, or a router's ICMP error about it) and healthy control probes.
- indeterminate, or no support at all                                   -> low
- a verdict about an address (unreachable-host, port-closed, filtered) without an
  independent resolver (reference, Corefile): the answer itself could be stale -> medium
- two kinds of support or more                                          -> high, else medium
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from toolkit.model import Finding, Severity, Verdict
from toolkit.triage.evidence import Evidence, Facts, facts_of
from toolkit.triage.resolve import resolve_findings
from toolkit.triage.rules import RULES, SETTLE_REFERENCE, RuleRow, demote_disagreements

ADDRESS_VERDICTS = frozenset({Verdict.UNREACHABLE_HOST, Verdict.PORT_CLOSED, Verdict.FILTERED})
DNS_VERDICTS = frozenset({Verdict.DNS_UNAVAILABLE, Verdict.DNS_ERROR})
INDEPENDENT = frozenset({"reference", "corefile"})
_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, kw_only=True)
class Classification:
    verdict: Verdict
    confidence: str  # "high" | "medium" | "low"
    findings: tuple[Finding, ...]
    settle: str | None = None  # what would make a less than certain verdict certain
    support: tuple[str, ...] = ()  # the kinds of independent evidence behind the confidence
    rule: str | None = None  # the rule that decided (None: no rule fired, the name is ok)
    notes: tuple[str, ...] = ()


def classify(e: Evidence) -> Classification:
    """Pure: the verdict, its confidence and the findings, from the evidence alone."""
    from toolkit.triage.appfindings import app_findings

    base = tuple(demote_disagreements([*resolve_findings(e.resolve), *e.corefile_findings,
                                       *e.conntrack_findings, *app_findings(e)]))
    f = facts_of(e, base)
    fired = [(row, x) for row in sorted(RULES, key=lambda r: -r.priority) if (x := row.rule(f)) is not None]
    decisive = next(((row, x) for row, x in fired if x.verdict is not None), None)
    verdict = decisive[1].verdict if decisive else Verdict.OK
    assert verdict is not None
    support = support_of(f, verdict, decisive[1] if decisive else None)
    confidence = grade(verdict, support)
    settle = _settle(f, decisive[0] if decisive else None)
    if settle is None and confidence != "high" and verdict in ADDRESS_VERDICTS:
        settle = f"{SETTLE_REFERENCE}, to rule out a stale answer"
    findings = _merge(base, fired, decisive)
    return Classification(verdict=verdict, confidence=confidence, findings=findings, settle=settle,
                          support=support, rule=decisive[0].rule.__name__ if decisive else None,
                          notes=_notes(f))


def support_of(f: Facts, verdict: Verdict, decisive: Finding | None) -> tuple[str, ...]:
    out = []
    if f.refs_answering:
        out.append("reference")
    if f.corefile_traced:
        out.append("corefile")
    observed = [p for p in f.paths if not p.answered] if verdict in DNS_VERDICTS else f.answering
    if len(observed) > 1:
        out.append("paths")
    if verdict in DNS_VERDICTS and observed:
        out.append("queries")  # the servers' failures were observed by our own queries
    addrs = list(decisive.data.get("addresses", ())) if decisive is not None else f.serving(f.path_addrs)
    reps = [f.reports[a] for a in addrs if a in f.reports]
    if reps and all(any(p.answered or p.reply_from for p in r.probes) for r in reps):
        out.append("probes")
    if reps and all(r.control_ok for r in reps):
        out.append("control")
    return tuple(out)


def grade(verdict: Verdict, support: Sequence[str]) -> str:
    if verdict is Verdict.INDETERMINATE or not support:
        return "low"
    if verdict in ADDRESS_VERDICTS and not INDEPENDENT & set(support):
        return "medium"
    return "high" if len(support) >= 2 else "medium"


def _settle(f: Facts, row: RuleRow | None) -> str | None:
    if row is None or row.settle is None:
        return None
    if row.rule.__name__ == "pod_dns_silent" and ([p for p in f.paths if p.role != "resolv.conf"]
                                                   or f.e.behind):
        return None  # servers behind the cache were asked: they failed too
    return row.settle


def _merge(base: Sequence[Finding], fired: Sequence[tuple[RuleRow, Finding]],
           decisive: tuple[RuleRow, Finding] | None) -> tuple[Finding, ...]:
    """Base findings and the rules' findings, once each. A lower rule's finding about the
    addresses the decisive finding explains is left out (a stale address that refuses the
    port is no port-closed); other lower findings stay, as warnings."""
    out = list(base)
    seen = {id(x) for x in base}
    explained = set(decisive[1].data.get("addresses", ())) if decisive else set()
    for row, x in fired:
        if id(x) in seen:
            continue
        seen.add(id(x))
        if decisive is not None and x is not decisive[1]:
            if explained & set(x.data.get("addresses", ())):
                continue
            if x.severity is Severity.CRITICAL:
                x = replace(x, severity=Severity.WARNING)
        out.append(x)
    verdict = decisive[1].verdict if decisive else Verdict.OK
    top = decisive[1] if decisive else None
    # The decisive finding first, then those that argue for the same verdict, then by severity.
    return tuple(sorted(out, key=lambda x: (x is not top, x.verdict is not verdict, _ORDER[x.severity])))


def _notes(f: Facts) -> tuple[str, ...]:
    silent = sorted({p.server for p in f.refs if p.failed} - {p.server for p in f.refs_answering})
    if not silent:
        return ()
    return (f"reference {', '.join(silent)} gave no answer: it could not vouch for the answers "
            "(a note, not a fault of the path)",)
