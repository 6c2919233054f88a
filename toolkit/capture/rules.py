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

from toolkit.capture.dnswire import Rcode
from toolkit.capture.records import CaptureMode, CaptureResult, ServerStats, StopReason
from toolkit.capture.text import hostport, iso, lookup_line
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
_SERVFAIL, _REFUSED = Rcode.SERVFAIL.name, Rcode.REFUSED.name
_FAILING = (_SERVFAIL, _REFUSED)
_ERROR_OUTCOMES = frozenset((_SERVFAIL, _REFUSED, Rcode.FORMERR.name, Rcode.NOTIMP.name))


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

def server_unanswered(f: ServerFacts) -> Finding | None:
    """A server that left queries unanswered (not explained by the 5-second signature, not
    still inside the timeout when the capture ended)."""
    s, srv = f.res.summary, f.server
    bad = srv.unanswered_unexplained
    if bad <= 0 or _multicast(srv.server):
        # mDNS (RFC 6762) and LLMNR (RFC 4795) ask a multicast group: answers come from
        # whichever host owns the name (mDNS often to the group, ID 0), so they never pair.
        return None
    icmp = ", ".join(f"{k} x{v}" for k, v in sorted(srv.icmp.items()))
    senders = ", ".join(srv.icmp_senders)
    examples = [u for u in s.unanswered_examples if u.server == srv.server and u.server_port == srv.port
                and not u.explained_by][:5]
    transports = sorted({u.transport for u in examples}) or list(srv.transports)
    evidence = [f"{srv.queries} queries to {hostport(srv.server, srv.port)}, {srv.responses} responses, "
                f"{srv.unanswered} unanswered"]
    if icmp:
        evidence.append(f"ICMP errors about queries to it: {icmp} (from {senders})")
    for u in examples:
        evidence.append(f"{hostport(u.client, u.client_port)} -> {u.qname} {u.qtype} over {u.transport}: "
                        f"{u.sends} send(s), no answer ({u.reason})"
                        + (f", ICMP {u.icmp} from {u.icmp_from}" if u.icmp else ""))
    if srv.icmp.get(NetError.PORT_UNREACHABLE):
        why = "nothing listens on the DNS port there (ICMP port-unreachable)"
    elif srv.icmp.get(NetError.HOST_UNREACHABLE):
        why = f"the host is unreachable (ICMP host-unreachable from {senders})"
    elif srv.responses == 0:
        why = f"silence: no answer within {s.timeout_s:g} s"
    else:
        why = "some queries were answered, others lost"
    severity = Severity.CRITICAL if srv.responses == 0 or bad * 10 >= srv.queries else Severity.WARNING
    return Finding(
        code="capture-unanswered", severity=severity,
        summary=f"{hostport(srv.server, srv.port)} left {bad} of {srv.queries} queries unanswered over "
        f"{'/'.join(transports)}: {why}",
        evidence=tuple(evidence),
        remedy="Check that the resolver process runs and listens on this address and port (NodeLocal "
        "DNSCache pod on this node, CoreDNS endpoints), and that nothing on the path drops UDP/TCP 53 "
        "(NetworkPolicy, node firewall); `podtriage resolve NAME --server "
        f"{srv.server}` asks it directly.",
        verdict=Verdict.DNS_UNAVAILABLE,
        data={"server": srv.server, "port": srv.port, "unanswered": bad, "queries": srv.queries,
              "responses": srv.responses, "icmp": dict(srv.icmp), "icmp_from": list(srv.icmp_senders),
              "transports": transports})


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
    """Answers that came after the client had given up."""
    s = res.summary
    if not s.late_responses:
        return None
    return Finding(
        code="capture-late-answers", severity=Severity.WARNING,
        summary=f"{s.late_responses} answers arrived more than {s.timeout_s:g} s after the query was sent: the "
        f"client had already given up (or retried)",
        evidence=(), remedy="A slow upstream behind the resolver (forwarders, force_tcp to CoreDNS): look at the "
        "servers' latency p95/max below.", verdict=Verdict.DNS_UNAVAILABLE,
        data={"late_responses": s.late_responses})


def error_rcodes(res: CaptureResult) -> Finding | None:
    """Error rcodes (SERVFAIL, REFUSED) seen, or ending lookups."""
    s = res.summary
    failed = [lk for lk in s.lookups if lk.outcome in _ERROR_OUTCOMES]
    if not failed and not any(s.rcodes.get(r) for r in _FAILING):
        return None
    servers = sorted({srv.server for srv in s.servers if srv.rcodes.get(_SERVFAIL) or srv.rcodes.get(_REFUSED)})
    counts = ", ".join(f"{r} x{s.rcodes[r]}" for r in _FAILING if s.rcodes.get(r))
    return Finding(
        code="capture-error-rcodes", severity=Severity.WARNING,
        summary=f"DNS errors from {', '.join(servers) or 'the resolver'}: {counts}",
        evidence=tuple(lookup_line(lk) for lk in failed[:5]),
        remedy="SERVFAIL: the resolver could not reach the authoritative servers (check its forwarders); "
        "REFUSED: an ACL or a zone the server does not serve.", verdict=Verdict.DNS_ERROR,
        data={"servers": servers, "rcodes": {r: s.rcodes.get(r, 0) for r in _FAILING}})


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


def malformed(res: CaptureResult) -> Finding | None:
    """Packets or capture records that could not be decoded."""
    s = res.summary
    if not s.malformed:
        return None
    return Finding(
        code="capture-malformed", severity=Severity.INFO, summary=f"{s.malformed} packets/records could not be decoded",
        evidence=tuple(f"{m.reason}" + (f" ({m.src} -> {m.dst})" if m.src else "") for m in s.malformed_examples[:5]),
        remedy="", verdict=None, data={"malformed": s.malformed})


def kernel_drops(res: CaptureResult) -> Finding | None:
    """Packets the kernel dropped before the capture read them."""
    if not res.kernel_drops:
        return None
    return Finding(
        code="capture-kernel-drops", severity=Severity.WARNING,
        summary=f"the kernel dropped {res.kernel_drops} packets before podtriage read them: counts are lower bounds",
        evidence=(), remedy="Narrow --filter, or capture for a shorter --duration.", verdict=None,
        data={"kernel_drops": res.kernel_drops})


def no_dns(res: CaptureResult) -> Finding | None:
    """A file without a single DNS packet: nothing can be said about DNS from it."""
    if res.mode != CaptureMode.READ or res.summary.dns_messages:
        return None
    return Finding(code="capture-no-dns", severity=Severity.INFO,
                   summary=f"no DNS packets in {res.source} ({res.packets} packets)", evidence=(),
                   remedy="Capture on the pod's interface with `-i any` and the DNS ports "
                   "(`tcpdump -i any -w f.pcap port 53`).")


# Evidence that is incomplete must not read as healthy: a file read cut short cannot vouch
# for the rest of the file, and queries evicted by the pending cap were not watched to the end.

def cut_short(res: CaptureResult) -> Finding | None:
    """The read of a file stopped before its end (--deadline, a signal)."""
    if res.mode != CaptureMode.READ or res.stopped_by == StopReason.END:
        return None
    s = res.summary
    why = "--deadline" if res.stopped_by == StopReason.DEADLINE else "a signal"
    return Finding(
        code="capture-cut-short", severity=Severity.WARNING,
        summary=f"the read of {res.source} was cut short by {why} after {res.packets} packets: the rest of "
        f"the file was not analysed and {s.pending_at_cut} queries were still waiting for an answer "
        "(not counted as unanswered)",
        evidence=(f"read {res.packets} packets in {res.elapsed_s:.1f} s",),
        remedy="raise --deadline (or cut the file down with `editcap -A/-B` or `tcpdump -r F -w G "
        "port 53`) so the whole file is read",
        verdict=Verdict.INDETERMINATE,
        data={"stopped_by": res.stopped_by, "packets_read": res.packets, "pending_at_cut": s.pending_at_cut})


def unread(res: CaptureResult) -> Finding | None:
    """A live capture that stopped with packets still queued, unread."""
    if not res.unread:
        return None
    return Finding(
        code="capture-unread", severity=Severity.WARNING,
        summary=f"{res.unread} captured packets were still queued unread when the capture stopped: the "
        "analysis fell behind the traffic, so its counts are lower bounds",
        evidence=(f"kernel: {res.kernel_packets} packets accepted by the filter, {res.kernel_drops} dropped, "
                  f"{res.packets} read",),
        remedy="capture with a narrower --filter (one server, UDP only) or for a shorter --duration; "
        "`-w FILE` and a later `--read FILE` analyses every packet the writer saw", verdict=None,
        data={"unread": res.unread, "kernel_packets": res.kernel_packets, "kernel_drops": res.kernel_drops})


def pending_evicted(res: CaptureResult) -> Finding | None:
    """Queries given up before their timeout because too many were waiting (the memory cap)."""
    s = res.summary
    if not s.evicted_pending:
        return None
    return Finding(
        code="capture-pending-evicted", severity=Severity.WARNING,
        summary=f"{s.evicted_pending} queries were given up unanswered before their timeout because more than "
        f"{s.max_pending} were waiting at once (the memory cap): their count is an upper bound",
        evidence=(), remedy="a flood of unanswered queries: look at the servers below; capture a narrower --filter "
        "to follow every query", verdict=None,
        data={"evicted_pending": s.evicted_pending, "max_pending": s.max_pending})


SERVER_RULES: tuple[RuleRow[ServerFacts], ...] = (
    RuleRow(priority=120, rule=server_unanswered),
)
RULES: tuple[RuleRow[CaptureResult], ...] = (
    RuleRow(priority=110, rule=five_second_signature),
    RuleRow(priority=100, rule=late_answers),
    RuleRow(priority=90, rule=error_rcodes),
    RuleRow(priority=80, rule=search_amplification),
    RuleRow(priority=70, rule=tc_not_followed),
    RuleRow(priority=60, rule=malformed),
    RuleRow(priority=50, rule=kernel_drops),
    RuleRow(priority=40, rule=no_dns),
    RuleRow(priority=30, rule=cut_short),
    RuleRow(priority=20, rule=unread),
    RuleRow(priority=10, rule=pending_evicted),
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
