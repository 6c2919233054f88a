"""The rule table of `capture`: each finding is one small rule ``CaptureResult -> Finding | None``.

A rule about one DNS server is asked once per server (busiest first): ``ServerFacts ->
Finding | None``. Every rule's texts live with it. ``findings`` runs the table; the
priority orders the findings of one severity (highest first), and the report then sorts
them by severity. The verdict is the most severe finding's (toolkit.model.derive_verdict):
the order never decides it.

Adding a rule: write the function here, add its row to ``RULES`` (or ``SERVER_RULES``), a
test. Nothing else changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from toolkit.capture import coverage, library_rules, othername
from toolkit.capture.dnswire import Rcode
from toolkit.capture.records import CaptureMode, CaptureResult, LookupOutcome, ServerStats, UnansweredReason
from toolkit.capture.text import hostport, iso, lookup_line, mismatch_line, pair_line
from toolkit.model import Finding, Severity, Verdict
from toolkit.sockerr import NetError

F = TypeVar("F")

SIGNATURE_REMEDY = (
    "The likely cause is the Linux conntrack insert race: glibc sends A and AAAA from one UDP "
    "socket at the same moment, both packets race to create the same conntrack entry, one is "
    "dropped and the resolver waits out its 5 s timeout. Remedies: `options "
    "single-request-reopen` (or `single-request`) in the pod's dnsConfig; NodeLocal DNSCache "
    "(no DNAT on the node for pod DNS traffic); `options use-vc` (DNS over TCP). musl-based images "
    "(Alpine) ignore these options: use NodeLocal DNSCache there, or a glibc image.")
# The rcodes that fail a lookup when they end it (NXDOMAIN and NODATA are answers; the
# extended ones, RFC 6891 6.1.3, are listed by name: BADVERS, BADCOOKIE...).
_ERRORS = frozenset(r.name for r in Rcode if r not in (Rcode.NOERROR, Rcode.NXDOMAIN))
_FAILED_OUTCOMES = _ERRORS | {str(LookupOutcome.MALFORMED)}
_REASON_TEXT = {UnansweredReason.TIMEOUT: "no answer after {t:g} s or more",
                UnansweredReason.RESENT: "sent again after the timeout (judged with the resend)",
                UnansweredReason.TXID_REUSED: "closed when the socket reused the ID for another question",
                UnansweredReason.CAPTURE_ENDED: "still waiting when the capture ended",
                UnansweredReason.EVICTED: "given up by the memory cap"}


@dataclass(frozen=True, kw_only=True)
class ServerFacts:
    """One server's record, with the capture it was seen in: what a per-server rule reads."""

    res: CaptureResult
    server: ServerStats


@dataclass(frozen=True, kw_only=True)
class RuleRow(Generic[F]):
    """One rule and its priority (the order among findings of one severity)."""

    priority: int
    rule: Callable[[F], Finding | None]


def _multicast(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_multicast
    except ValueError:
        return False


# ------------------------------------------------------------------------- per server

def _reasons(srv: ServerStats, timeout: float) -> str:
    """How a server's unanswered queries ended, from its counters."""
    parts = [f"{n} {_REASON_TEXT[UnansweredReason(k)].format(t=timeout)}"
             for k, n in sorted(srv.unanswered_reasons.items(), key=lambda kv: -kv[1])]
    if srv.unanswered_explained:
        parts.append(f"{srv.unanswered_explained} of them explained by the 5-second signature")
    return "; ".join(parts)


def server_unanswered(f: ServerFacts) -> Finding | None:
    """A server that left queries without an answer although the client waited at least the
    resolver timeout (not explained by the 5-second signature)."""
    res, srv = f.res, f.server
    s = res.summary
    lost = srv.unanswered_lost
    if lost <= 0 or _multicast(srv.server):
        # mDNS (RFC 6762) and LLMNR (RFC 4795) ask a multicast group: answers come from
        # whichever host owns the name (mDNS often to the group, ID 0), so they never pair.
        return None
    if not s.responses and not srv.icmp and not coverage.two_way(res):
        return None  # a capture without one response may be one-way: coverage.no_responses says so
    answered = sum(srv.answer_rcodes.values())
    icmp = ", ".join(f"{k} x{v}" for k, v in sorted(srv.icmp.items()))
    senders = ", ".join(srv.icmp_senders)
    examples = [u for u in s.unanswered_examples if u.server == srv.server and u.server_port == srv.port
                and not u.explained_by and u.reason == UnansweredReason.TIMEOUT][:5]
    transports = sorted({u.transport for u in examples}) or list(srv.transports)
    evidence = [f"{srv.transactions} queries to {hostport(srv.server, srv.port)} ({srv.queries} sent with the "
                f"retransmissions), {answered} answered; {srv.unanswered} unanswered: "
                f"{_reasons(srv, s.timeout_s)}"]
    if icmp:
        evidence.append(f"ICMP errors about queries to it: {icmp} (from {senders})")
    for u in examples:
        evidence.append(f"{hostport(u.client, u.client_port)} -> {u.qname} {u.qtype} over {u.transport}: "
                        f"{u.sends} send(s), no answer in {u.waited_s:.1f} s"
                        + (f", ICMP {u.icmp} from {u.icmp_from}" if u.icmp else ""))
    if srv.icmp.get(NetError.PORT_UNREACHABLE):
        why = "nothing listens on the DNS port there (ICMP port-unreachable)"
    elif srv.icmp.get(NetError.HOST_UNREACHABLE):
        why = f"the host is unreachable (ICMP host-unreachable from {senders})"
    elif answered == 0:
        why = f"silence: not one of its {srv.transactions} queries was answered"
    else:
        why = f"{answered} were answered, {lost} got no answer within {s.timeout_s:g} s"
    severity = Severity.CRITICAL if answered == 0 or lost * 10 >= srv.transactions else Severity.WARNING
    return Finding(
        code="capture-unanswered", severity=severity,
        summary=f"{hostport(srv.server, srv.port)} left {lost} of {srv.transactions} queries unanswered over "
        f"{'/'.join(transports)}: {why}",
        evidence=tuple(evidence),
        remedy="Check that the resolver process runs and listens on this address and port (NodeLocal "
        "DNSCache pod on this node, CoreDNS endpoints), and that nothing on the path drops UDP/TCP 53 "
        "(NetworkPolicy, node firewall); `podtriage resolve NAME --server "
        f"{srv.server}` asks it directly.",
        verdict=Verdict.DNS_UNAVAILABLE,
        data={"server": srv.server, "port": srv.port, "unanswered": lost, "queries": srv.queries,
              "transactions": srv.transactions, "answered": answered, "responses": srv.responses,
              "icmp": dict(srv.icmp), "icmp_from": list(srv.icmp_senders), "transports": transports,
              "unanswered_reasons": dict(srv.unanswered_reasons)})


# ------------------------------------------------------------------------- the capture

def five_second_signature(res: CaptureResult) -> Finding | None:
    """A and AAAA sent together, one answered at once, the other resent after the timeout."""
    s = res.summary
    if not s.signature_hits:
        return None
    ev = []
    for h in s.signature_examples[:5]:
        ev.append(f"{iso(h.ts)} {hostport(h.client, h.client_port)} -> {h.server} {h.qname}: {h.answered} answered "
                  f"in {h.answered_in_ms:.1f} ms, {h.lost} sent again after {h.resent_after_s:.2f} s"
                  + (" from a new socket" if h.new_socket else ""))
    lost = s.signature_lost_types
    if len(lost) == 1 and s.signature_hits >= 3:
        only = next(iter(lost))
        ev.append(f"always the {only} query was lost ({s.signature_hits} of {s.signature_hits}): a "
                  f"consistent loss of one type also fits a filter that drops {only} queries")
    return Finding(
        code="capture-5s-signature", severity=Severity.WARNING,
        summary=f"the 5-second signature, {s.signature_hits} time(s): A and AAAA sent together from one "
        f"socket, one answered at once, the other sent again after the {s.timeout_s:g} s resolver timeout",
        evidence=tuple(ev), remedy=SIGNATURE_REMEDY, verdict=Verdict.CONNTRACK,
        data={"hits": s.signature_hits, "lost_types": dict(lost)})


def late_answers(res: CaptureResult) -> Finding | None:
    """Questions answered only after the resolver timeout (the 5-second signature's resends
    aside): a slow server or upstream. When every late answer is an error, the error rule
    owns the verdict and this is its evidence of a slow upstream."""
    s = res.summary
    n = sum(s.late_rcodes.values())
    if not n or s.late_max_ms is None or s.late_min_ms is None:
        return None
    errors = sum(v for k, v in s.late_rcodes.items() if k in _ERRORS)
    rcodes = ", ".join(f"{k} x{v}" for k, v in sorted(s.late_rcodes.items(), key=lambda kv: -kv[1]))
    span = (f"{s.late_min_ms / 1000:.1f} s" if round(s.late_min_ms, -2) == round(s.late_max_ms, -2)
            else f"{s.late_min_ms / 1000:.1f} s to {s.late_max_ms / 1000:.1f} s")
    return Finding(
        code="capture-late-answers", severity=Severity.WARNING,
        summary=f"{n} question(s) answered only {span} after first asked (resolver timeout "
        f"{s.timeout_s:g} s: the client had resent or given up): {rcodes}",
        evidence=tuple(pair_line(x) for x in s.late_examples[:5]),
        remedy="A slow upstream behind the resolver (forwarders, force_tcp to CoreDNS, an unreachable "
        "authoritative server): the server answers, but after its clients stopped waiting. Check the "
        "upstreams of the server named above (CoreDNS `forward` health, `errors` log).",
        verdict=None if errors == n else Verdict.DNS_UNAVAILABLE,
        data={"late_answers": n, "rcodes": dict(s.late_rcodes), "min_ms": s.late_min_ms, "max_ms": s.late_max_ms,
              "late_responses": s.late_responses, "signature_resends": s.late_signature})


def error_rcodes(res: CaptureResult) -> Finding | None:
    """Error rcodes: a verdict when they ended lookups, a note when a search walk went on
    past them to its answer."""
    s = res.summary
    failed = {k: v for k, v in s.lookup_outcomes.items() if k in _FAILED_OUTCOMES}
    answers = {k: v for k, v in s.answer_rcodes.items() if k in _ERRORS}
    if not failed and not answers:
        return None
    servers = sorted({srv.server for srv in s.servers if any(k in _ERRORS for k in srv.answer_rcodes)})
    counts = ", ".join(f"{k} x{v}" for k, v in sorted(answers.items(), key=lambda kv: -kv[1]))
    repeats = sum(v for k, v in s.rcodes.items() if k in _ERRORS) - sum(answers.values())
    said = (f"{counts} (distinct queries" + (f"; {repeats} more repeated responses)" if repeats > 0 else ")")
            if answers else "")
    data = {"servers": servers, "rcodes": answers, "lookups_failed": failed, "responses_repeated": max(0, repeats)}
    if not failed:
        return Finding(
            code="capture-error-rcodes", severity=Severity.INFO,
            summary=f"{said} from {', '.join(servers) or 'the resolver'} for search candidates whose walks "
            f"went on and resolved: not what the application saw",
            evidence=tuple(lookup_line(lk) for lk in s.lookups if lk.errors)[:5], remedy="", verdict=None,
            data=data)
    lookups = ", ".join(f"{k} x{v}" for k, v in sorted(failed.items(), key=lambda kv: -kv[1]))
    return Finding(
        code="capture-error-rcodes", severity=Severity.WARNING,
        summary=f"{sum(failed.values())} lookup(s) failed ({lookups}); DNS errors from "
        f"{', '.join(servers) or 'the resolver'}: {said}",
        evidence=tuple(lookup_line(lk) for lk in s.failed_lookup_examples[:5]),
        remedy="SERVFAIL: the resolver could not reach the authoritative servers (check its forwarders); "
        "REFUSED: an ACL or a zone the server does not serve; malformed-answer: a server or middlebox "
        "sends records no resolver can read.", verdict=Verdict.DNS_ERROR, data=data)


def answer_mismatch(res: CaptureResult) -> Finding | None:
    """Answers on a query's socket and ID that carry another question."""
    s = res.summary
    if not s.mismatched_responses:
        return None
    return Finding(
        code="capture-answer-mismatch", severity=Severity.WARNING,
        summary=f"{s.mismatched_responses} answer(s) came back on a query's socket and ID with another question: "
        f"never taken as answers here (glibc drops them, res_queriesmatch; musl matches by ID alone and "
        f"would take them): possible spoofing or a broken middlebox",
        evidence=tuple(mismatch_line(m) for m in s.mismatch_examples[:5]),
        remedy="Compare with a capture at the server (did it send these?); an off-path attacker guessing IDs, "
        "or a NAT/DNS proxy mixing up transactions. `podtriage resolve NAME --server S` asks over TCP too.",
        verdict=Verdict.BAD_ANSWER, data={"mismatched": s.mismatched_responses})


def malformed_answers(res: CaptureResult) -> Finding | None:
    """Answers paired with their query whose records cannot be read."""
    s = res.summary
    if not s.malformed_answers:
        return None
    return Finding(
        code="capture-malformed-answers", severity=Severity.WARNING,
        summary=f"{s.malformed_answers} answer(s) could not be read (a damaged answer section): no address taken "
        f"from them; their lookups fail (glibc: EAI_FAIL)",
        evidence=tuple(pair_line(p) for p in s.malformed_answer_examples[:5]),
        remedy="A server or middlebox that corrupts answers (compression loops, counts past the end): "
        "capture at the server to see which.", verdict=Verdict.BAD_ANSWER,
        data={"malformed_answers": s.malformed_answers})


def search_amplification(res: CaptureResult) -> Finding | None:
    """Lookups that walked the search list: queries (and NXDOMAIN answers) per lookup."""
    s = res.summary
    if not s.lookups_with_search:
        return None
    avg = s.search_queries / s.lookups_with_search
    nx_share = s.search_nxdomain / s.responses if s.responses else 0.0
    heavy = nx_share >= 0.5 and s.lookups_with_search >= 3
    return Finding(
        code="capture-search-amplification", severity=Severity.WARNING if heavy else Severity.INFO,
        summary=f"{s.lookups_with_search} lookup(s) walked the search list: {avg:.1f} queries per lookup on "
        f"average, {s.search_nxdomain} NXDOMAIN answers ({nx_share:.0%} of all responses)",
        evidence=tuple(lookup_line(lk) for lk in s.lookups if len(lk.candidates) > 1)[:5],
        remedy="Use fully qualified names with a trailing dot (api.corp.example.), or lower ndots in the "
        "pod's dnsConfig (options ndots:2); CoreDNS `autopath` answers the chain in one query.",
        verdict=None, data={"lookups": s.lookups_with_search, "queries": s.search_queries,
                            "nxdomain": s.search_nxdomain})


def tc_not_followed(res: CaptureResult) -> Finding | None:
    """Truncated answers never retried over TCP."""
    s = res.summary
    if not s.tc_not_followed:
        return None
    return Finding(
        code="capture-tc-not-followed", severity=Severity.WARNING,
        summary=f"{s.tc_not_followed} truncated (TC) answer(s) were not followed by a retry over TCP "
        f"({s.tc_followed_by_tcp} were)",
        evidence=(), remedy="The client cannot or may not use TCP: musl before 1.2.4 never retries over TCP; check "
        "that TCP 53 to the resolver is open.", verdict=None,
        data={"tc": s.tc_responses, "followed": s.tc_followed_by_tcp, "not_followed": s.tc_not_followed})


SERVER_RULES: tuple[RuleRow[ServerFacts], ...] = (
    RuleRow(priority=120, rule=server_unanswered),
)
RULES: tuple[RuleRow[CaptureResult], ...] = (
    RuleRow(priority=115, rule=answer_mismatch),
    RuleRow(priority=112, rule=malformed_answers),
    RuleRow(priority=110, rule=five_second_signature),
    RuleRow(priority=109, rule=library_rules.parallel_queries),
    RuleRow(priority=100, rule=late_answers),
    RuleRow(priority=90, rule=error_rcodes),
    RuleRow(priority=85, rule=othername.answered_by_search_candidate),
    RuleRow(priority=80, rule=search_amplification),
    RuleRow(priority=79, rule=library_rules.search_walks),
    RuleRow(priority=70, rule=tc_not_followed),
    RuleRow(priority=69, rule=library_rules.truncated_to_musl),
    RuleRow(priority=65, rule=coverage.no_responses),
    RuleRow(priority=64, rule=coverage.no_queries),
    RuleRow(priority=60, rule=coverage.malformed),
    RuleRow(priority=50, rule=coverage.kernel_drops),
    RuleRow(priority=40, rule=coverage.no_dns),
    RuleRow(priority=35, rule=coverage.not_analysed),
    RuleRow(priority=30, rule=coverage.cut_short),
    RuleRow(priority=20, rule=coverage.unread),
    RuleRow(priority=10, rule=coverage.pending_evicted),
)


def findings(res: CaptureResult) -> list[Finding]:
    """Every finding of both tables: by priority (highest first), then by severity (a
    stable sort: the priority orders the findings of one severity)."""
    found: list[tuple[int, Finding]] = []
    for srow in SERVER_RULES:
        for srv in res.summary.servers:
            f = srow.rule(ServerFacts(res=res, server=srv))
            if f is not None:
                found.append((srow.priority, f))
    for row in RULES:
        f = row.rule(res)
        if f is not None:
            found.append((row.priority, f))
    found.sort(key=lambda pf: -pf[0])
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted((f for _, f in found), key=lambda f: order[f.severity])


def default_verdict(res: CaptureResult) -> Verdict:
    """The verdict when no finding argues one: ``ok`` needs evidence (at least one question
    answered; or a live capture in which nothing asked), otherwise ``indeterminate``."""
    s = res.summary
    if s.pairs:
        return Verdict.OK
    if res.mode == CaptureMode.LIVE and not s.transactions and not s.responses:
        return Verdict.OK
    return Verdict.INDETERMINATE
