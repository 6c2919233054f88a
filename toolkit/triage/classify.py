"""`diagnose`'s verdict: run the rule table, take the highest-priority finding's verdict, and
grade the confidence by how much independent evidence agrees (never by which rule ran).

Confidence (DESIGN.md "Verdicts"): the kinds of support are a reference that answered, a
Corefile trace, more than one path (server x transport) observed, a DNS failure seen by our
own queries, addresses that answered directly (the host itself, or a router's ICMP error
about it) and healthy control probes (``Support``).
- indeterminate, or no support at all                                   -> low
- a verdict about an address (unreachable-host, port-closed, filtered) without an
  independent resolver (reference, Corefile): the answer itself could be stale -> medium
- two kinds of support or more                                          -> high, else medium
- a row that needs confirmation (an answer from a search-suffixed candidate): high when a
  reference or a wildcard probe confirms it, else medium
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from toolkit.model import Confidence, Finding, Severity, Verdict
from toolkit.triage.evidence import Evidence, Facts, facts_of
from toolkit.triage.resolve_findings import resolve_findings
from toolkit.triage.rules import SETTLE_REFERENCE
from toolkit.triage.table import RULES, RuleRow, demote_disagreements

ADDRESS_VERDICTS = frozenset({Verdict.UNREACHABLE_HOST, Verdict.PORT_CLOSED, Verdict.FILTERED})
DNS_VERDICTS = frozenset({Verdict.DNS_UNAVAILABLE, Verdict.DNS_ERROR})
_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Support(StrEnum):
    """A kind of evidence behind a verdict (the JSON ``support`` list)."""

    REFERENCE = "reference"  # an independent resolver answered
    COREFILE = "corefile"  # a Corefile trace names the block and upstream
    PATHS = "paths"  # more than one path (server x transport) observed the same
    QUERIES = "queries"  # our own queries saw the servers fail
    PROBES = "probes"  # the addresses answered directly (or a router's ICMP error, or our own ARP/ND, about them)
    CONTROL = "control"  # the control probes beside them were healthy
    WILDCARD_PROBE = "wildcard-probe"  # a random name under the search domain resolves to the same address
    ENDPOINTS = "endpoints"  # the DNS Service's live endpoints exclude a DNAT target (issue 26)
    CONNTRACK = "conntrack"  # live conntrack entries still steer DNS flows to that target


# Support that does not come through the resolver path under suspicion.
INDEPENDENT = frozenset({Support.REFERENCE, Support.COREFILE})
# What confirms a row whose verdict needs confirmation (RuleRow.needs_confirmation).
CONFIRMING = INDEPENDENT | {Support.WILDCARD_PROBE}


@dataclass(frozen=True, kw_only=True)
class Classification:
    """diagnose's decision: the verdict, how sure it is, and the findings behind it."""

    verdict: Verdict
    confidence: Confidence
    findings: tuple[Finding, ...]
    settle: str | None = None  # what would make a less than certain verdict certain
    support: tuple[Support, ...] = ()  # the kinds of independent evidence behind the confidence
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
    verdict = decisive[1].verdict if decisive is not None and decisive[1].verdict is not None else Verdict.OK
    support = support_of(f, verdict, decisive[1] if decisive else None)
    confidence = grade(verdict, support, needs_confirmation=decisive is not None and decisive[0].needs_confirmation)
    settle = _settle(f, decisive[0] if decisive else None)
    if settle is None and confidence is not Confidence.HIGH and verdict in ADDRESS_VERDICTS:
        settle = f"{SETTLE_REFERENCE}, to rule out a stale answer"
    findings = _merge(base, fired, decisive)
    return Classification(verdict=verdict, confidence=confidence, findings=findings, settle=settle,
                          support=support, rule=decisive[0].name if decisive else None,
                          notes=_notes(f))


def support_of(f: Facts, verdict: Verdict, decisive: Finding | None) -> tuple[Support, ...]:
    """The kinds of evidence that back ``verdict`` (and the deciding finding's addresses)."""
    out = []
    confirmed = decisive.data.get("confirmed_by") if decisive is not None else None
    if confirmed is not None:  # the finding says which independent evidence confirms it
        out += [Support(c) for c in confirmed]
    elif f.refs_answering:
        out.append(Support.REFERENCE)
    if f.corefile_traced:
        out.append(Support.COREFILE)
    observed = [p for p in f.paths if not p.answered] if verdict in DNS_VERDICTS else f.answering
    if len(observed) > 1:
        out.append(Support.PATHS)
    if verdict in DNS_VERDICTS and observed:
        out.append(Support.QUERIES)  # the servers' failures were observed by our own queries
    addrs = list(decisive.addresses) if decisive is not None else f.serving(f.path_addrs)
    reps = [f.reports[a] for a in addrs if a in f.reports]
    if reps and all(r.observed for r in reps):
        out.append(Support.PROBES)
    if reps and all(r.control_ok for r in reps):
        out.append(Support.CONTROL)
    return tuple(out)


def grade(verdict: Verdict, support: Sequence[Support], *, needs_confirmation: bool = False) -> Confidence:
    """The confidence of ``verdict`` given its support (see the module docstring)."""
    if verdict is Verdict.INDETERMINATE or not support:
        return Confidence.LOW
    if needs_confirmation:
        return Confidence.HIGH if CONFIRMING & set(support) else Confidence.MEDIUM
    if verdict in ADDRESS_VERDICTS and not INDEPENDENT & set(support):
        return Confidence.MEDIUM
    return Confidence.HIGH if len(support) >= 2 else Confidence.MEDIUM


def _settle(f: Facts, row: RuleRow | None) -> str | None:
    if row is None or row.settle is None:
        return None
    return row.settle(f)


def _merge(base: Sequence[Finding], fired: Sequence[tuple[RuleRow, Finding]],
           decisive: tuple[RuleRow, Finding] | None) -> tuple[Finding, ...]:
    """Base findings and the rules' findings, once each. A lower rule's finding about the
    addresses the decisive finding explains is left out (a stale address that refuses the
    port is no port-closed); other lower findings stay, as warnings."""
    out = list(base)
    seen = {id(x) for x in base}
    explained = set(decisive[1].addresses) if decisive else set()
    for _row, x in fired:
        if id(x) in seen:
            continue
        seen.add(id(x))
        if decisive is not None and x is not decisive[1]:
            if explained & set(x.addresses):
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
