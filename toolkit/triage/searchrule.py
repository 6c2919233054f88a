"""The diagnose row for answers that belong to another name (issue 28): a search-suffixed
candidate answered instead of the name meant. The analysis is toolkit.triage.another_name's;
this rule judges it by what the addresses do, as every answer row does (DESIGN.md
"Verdicts": a search-domain record that answered instead of the name asked for is a bad
answer when its address does not serve the port, whatever its symptom).
"""

from __future__ import annotations

from toolkit.model import Finding, Severity, Verdict
from toolkit.triage.another_name import AnswerKind, remedy
from toolkit.triage.evidence import Facts
from toolkit.triage.resolve_findings import fmt_addresses


def answered_by_search_candidate(f: Facts) -> Finding | None:
    """A search-suffixed candidate answered for the name (a wildcard under a search domain, a
    resolver that rewrites NXDOMAIN, or the candidate's own record) while the name itself
    resolves elsewhere or a random name under the domain resolves too: bad-answer when the
    candidate's address does not serve the port, a warning when it does (it works by accident)."""
    a = f.another_name
    if a is None:
        return None
    wrong = list(a.addresses)
    meant = [x for x in a.meant if x not in wrong]
    works = bool(wrong) and f.serving(wrong) == wrong
    what = {AnswerKind.WILDCARD: "wildcard", AnswerKind.NXDOMAIN_REWRITE: "rewritten NXDOMAIN"}.get(
        a.kind, "candidate's record")
    if works:
        tail = (f"; {fmt_addresses(wrong)} serves the port too: it works by accident (the application talks "
                f"to whatever the {what} points at, not to {a.name})")
    else:
        tail = f"; {fmt_addresses(wrong)} does not serve the port ({f.summaries(wrong)})"
        serving = f.serving(meant)
        if serving:
            tail += f" while {fmt_addresses(serving)}, the name itself, does"
        elif f.probed(meant):
            tail += f"; {fmt_addresses(meant)}, the name itself, does not either ({f.summaries(meant)})"
    return Finding(
        code=a.code, severity=Severity.WARNING if works else Severity.CRITICAL, summary=a.what() + tail,
        evidence=a.evidence() + f.probe_lines([*wrong, *meant]), remedy=remedy(a),
        verdict=None if works else Verdict.BAD_ANSWER, addresses=tuple(wrong),
        data={**a.data(), "states": {x: str(f.state(x)) for x in wrong},
              "itself_states": {x: str(f.state(x)) for x in meant}})
