"""The rule table of `diagnose`: which rules run, in which priority, and what would make
each one's verdict certain.

The verdict is the verdict of the highest-priority rule that fires (``RULES``, highest
first); the order of the code never decides. Confidence is decided apart, from how much
independent evidence agrees (toolkit.triage.classify). The rules themselves, with their
texts, are in toolkit.triage.rules and toolkit.triage.dualstack; the table is documented
row by row in toolkit/triage/DECISIONS.md and tested in tests/unit/test_diagnose_rules.py.

Adding a rule: write the function in a rule module, add its row here, a test, and a row in
DECISIONS.md. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from toolkit.model import Finding, Severity, Verdict
from toolkit.triage import cacherule, conntrackrule, dualstack, pathrules, rules, searchrule
from toolkit.triage.another_name import CODES as SEARCH_CODES
from toolkit.triage.evidence import Facts
from toolkit.triage.rules import SETTLE_REFERENCE

Rule = Callable[[Facts], "Finding | None"]
# What would make a rule's verdict certain, given the facts (None: nothing to add).
Settle = Callable[[Facts], "str | None"]

# Answers that differ are judged by the address rules (stale-answer, dead-answer-from-some-
# servers, answer-differs-both-serve): in diagnose the resolve findings that report the
# difference are evidence, not verdicts.
DISAGREEMENT_CODES = frozenset({"answers-disagree", "answer-differs-from-reference",
                                "transport-answers-differ"})


@dataclass(frozen=True, kw_only=True)
class RuleRow:
    """One row of the table: the rule, its name (``Classification.rule``), its priority,
    and what would settle its verdict."""

    name: str
    priority: int
    rule: Rule
    settle: Settle | None = None
    # Its verdict is high only when its finding names independent evidence that confirms it
    # (``data["confirmed_by"]``: a reference, a wildcard probe); medium otherwise.
    needs_confirmation: bool = False


def always(text: str) -> Settle:
    """A settle that is the same whatever the facts."""
    return lambda _f: text


def _settle_search(f: Facts) -> str | None:
    # The wildcard probe always runs: without it matching, only a reference can confirm.
    a = f.another_name
    if a is None or a.confirmed_by:
        return None
    return "rerun with --reference IP (an independent resolver: what the name itself is, and the candidate is not)"


def _settle_pod_dns_silent(f: Facts) -> str | None:
    # When servers behind the cache were asked and failed too, naming one more settles nothing.
    if f.behind_asked:
        return None
    return "add --server IP for the DNS service behind the cache (e.g. the kube-dns ClusterIP) or --corefile"


# The table: highest priority first. A DNS failure on the pod's path leaves nothing to
# probe; a wrong answer explains whatever its address does; then the address's own state.
RULES: tuple[RuleRow, ...] = (
    RuleRow(name="dns_not_asked", priority=110, rule=rules.dns_not_asked,
            settle=always("rerun with a larger --deadline")),
    RuleRow(name="stale_dns_conntrack", priority=105, rule=conntrackrule.stale_dns_conntrack),
    RuleRow(name="tcp_forward_blocked", priority=102, rule=pathrules.tcp_forward_blocked),
    RuleRow(name="cache_broken_hop", priority=100, rule=rules.cache_broken_hop),
    RuleRow(name="cache_upstream_silent", priority=97, rule=pathrules.cache_upstream_silent),
    RuleRow(name="pod_dns_silent", priority=95, rule=rules.pod_dns_silent, settle=_settle_pod_dns_silent),
    RuleRow(name="path_silent_part_way", priority=90, rule=rules.path_silent_part_way),
    RuleRow(name="error_only_on_path", priority=85, rule=rules.error_only_on_path),
    RuleRow(name="dns_error", priority=80, rule=rules.dns_error),
    RuleRow(name="answered_by_search_candidate", priority=72, rule=searchrule.answered_by_search_candidate,
            settle=_settle_search,
            needs_confirmation=True),
    RuleRow(name="stale_cache_answer", priority=71, rule=cacherule.stale_cache_answer),
    RuleRow(name="stale_answer", priority=70, rule=rules.stale_answer),
    RuleRow(name="dead_answer_from_some_servers", priority=65, rule=rules.dead_answer_from_some_servers),
    RuleRow(name="aaaa_unroutable", priority=62, rule=dualstack.aaaa_unroutable),
    RuleRow(name="reserved_answer", priority=60, rule=rules.reserved_answer),
    RuleRow(name="host_down", priority=55, rule=rules.host_down),
    RuleRow(name="dead_answer_unconfirmed", priority=50, rule=rules.dead_answer_unconfirmed,
            settle=always(SETTLE_REFERENCE)),
    RuleRow(name="family_fails", priority=47, rule=dualstack.family_fails),
    RuleRow(name="port_filtered", priority=45, rule=rules.port_filtered),
    RuleRow(name="port_closed", priority=40, rule=rules.port_closed),
    RuleRow(name="aaaa_unroutable_beside_a", priority=37, rule=dualstack.aaaa_unroutable_beside_a),
    RuleRow(name="some_addresses_dead", priority=35, rule=rules.some_addresses_dead),
    RuleRow(name="other_evidence", priority=30, rule=rules.other_evidence),
    RuleRow(name="address_unverified", priority=20, rule=rules.address_unverified,
            settle=always("give --port N for the application's port (a TCP answer proves the host is there)")),
    RuleRow(name="answer_differs_both_serve", priority=10, rule=rules.answer_differs_both_serve),
)


def demote_disagreements(findings: Sequence[Finding]) -> list[Finding]:
    """Differing answers are judged by the address rules: keep the resolve findings that
    report them as warnings without a verdict of their own. resolve's answers-for-another-name
    findings are left out: the answered_by_search_candidate row makes them again, with what
    the addresses do."""
    return [replace(x, severity=Severity.WARNING, verdict=None)
            if x.code in DISAGREEMENT_CODES and x.verdict is Verdict.BAD_ANSWER else x for x in findings
            if x.code not in SEARCH_CODES]
