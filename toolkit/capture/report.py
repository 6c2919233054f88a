"""CaptureResult -> Report: findings, verdict, tables, the JSON keys, and event dicts."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from toolkit.capture.analysis import IcmpSeen, Lookup, Pair, Retransmission, Unanswered
from toolkit.capture.decode import Malformed
from toolkit.capture.session import CaptureResult
from toolkit.model import Finding, Report, Severity, Table, Verdict, derive_verdict, to_jsonable

EVENT_NAMES = {Pair: "pair", Unanswered: "unanswered", Retransmission: "retransmission",
               Malformed: "malformed", Lookup: "lookup", IcmpSeen: "icmp"}
MAX_LOOKUP_ROWS = 25

SIGNATURE_REMEDY = (
    "The likely cause is the Linux conntrack insert race: glibc sends A and AAAA from one UDP "
    "socket at the same moment, both packets race to create the same conntrack entry, one is "
    "dropped and the resolver waits out its 5 s timeout. Remedies: `options "
    "single-request-reopen` (or `single-request`) in the pod's dnsConfig; NodeLocal DNSCache "
    "(no DNAT on the node for pod DNS traffic); `options use-vc` (DNS over TCP). musl-based images "
    "(Alpine) ignore these options: use NodeLocal DNSCache there, or a glibc image.")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_dict(obj: Any) -> dict[str, Any]:
    """One streamed analyzer result as an ndjson event body (``event`` key first)."""
    body = to_jsonable(obj)
    out = {"event": EVENT_NAMES.get(type(obj), "result")}
    out.update(body)
    if "ts" in out:
        out["ts"] = iso(getattr(obj, "ts", None))
    return out


def hostport(addr: str, port: int) -> str:
    """``10.0.0.1:53``, ``[2620:fe::fe]:53`` (RFC 3986 3.2.2): an IPv6 address in brackets."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _multicast(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_multicast
    except ValueError:
        return False


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def lookup_line(lk: Lookup) -> str:
    """The one human line per completed lookup."""
    who = ""
    if lk.process is not None:
        who = f" {lk.process.name}[{lk.process.pid}]"
    types = ",".join(lk.qtypes)
    if lk.outcome == "answered":
        what = ", ".join(lk.addresses[:4]) or "answered (no A/AAAA)"
        if len(lk.addresses) > 4:
            what += f" +{len(lk.addresses) - 4}"
        if lk.answered_name and lk.answered_name.lower() != lk.base:
            what += f" (as {lk.answered_name})"
    else:
        what = lk.outcome
    extra = [f"{lk.queries} quer{'y' if lk.queries == 1 else 'ies'}"]
    if lk.nxdomain:
        extra.append(f"{lk.nxdomain} NXDOMAIN")
    if lk.retransmissions:
        extra.append(f"{lk.retransmissions} retransmitted")
    if lk.unanswered:
        extra.append(f"{lk.unanswered} unanswered")
    ts = iso(lk.ts) or ""
    return (f"{ts[11:23]} {lk.client}{who} {lk.base} {types} -> {what} in {lk.duration_ms:.1f} ms "
            f"({', '.join(extra)})")


def _findings(res: CaptureResult) -> list[Finding]:
    """Every rule of CAPTURE_RULES, in the table's order."""
    return [f for rule in CAPTURE_RULES for f in rule(res)]


def _unanswered(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 1. servers that left queries unanswered
    for srv in s.servers:
        bad = srv.unanswered_unexplained
        if bad <= 0 or _multicast(srv.server):
            # mDNS (RFC 6762) and LLMNR (RFC 4795) ask a multicast group: answers come from
            # whichever host owns the name (mDNS often to the group, ID 0), so they never pair.
            continue
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
        if srv.icmp.get("port-unreachable"):
            why = "nothing listens on the DNS port there (ICMP port-unreachable)"
        elif srv.icmp.get("host-unreachable"):
            why = f"the host is unreachable (ICMP host-unreachable from {senders})"
        elif srv.responses == 0:
            why = f"silence: no answer within {to:g} s"
        else:
            why = "some queries were answered, others lost"
        severity = Severity.CRITICAL if srv.responses == 0 or bad * 10 >= srv.queries else Severity.WARNING
        out.append(Finding(
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
             "transports": transports}))
    return out


def _signature(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 2. the 5-second signature
    if s.signature_hits:
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
        out.append(Finding(
            code="capture-5s-signature", severity=Severity.WARNING,
            summary=f"the 5-second signature, {s.signature_hits} time(s): A and AAAA sent together from one "
            f"socket, one answered at once, the other sent again after the {to:g} s resolver timeout",
            evidence=tuple(ev), remedy=SIGNATURE_REMEDY, verdict=Verdict.CONNTRACK,
            data={"hits": s.signature_hits, "lost_types": dict(lost)}))
    return out


def _late_answers(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 3. answers that came after the client had given up
    if s.late_responses:
        out.append(Finding(
            code="capture-late-answers", severity=Severity.WARNING,
            summary=f"{s.late_responses} answers arrived more than {to:g} s after the query was sent: the client "
            f"had already given up (or retried)",
            evidence=(), remedy="A slow upstream behind the resolver (forwarders, force_tcp to CoreDNS): look at the "
                "servers' latency p95/max below.", verdict=Verdict.DNS_UNAVAILABLE,
            data={"late_responses": s.late_responses}))
    return out


def _error_rcodes(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 4. error rcodes ending lookups
    failed = [lk for lk in s.lookups if lk.outcome in ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP")]
    if failed or any(s.rcodes.get(r) for r in ("SERVFAIL", "REFUSED")):
        servers = sorted({srv.server for srv in s.servers
                          if srv.rcodes.get("SERVFAIL") or srv.rcodes.get("REFUSED")})
        counts = ", ".join(f"{r} x{s.rcodes[r]}" for r in ("SERVFAIL", "REFUSED") if s.rcodes.get(r))
        out.append(Finding(
            code="capture-error-rcodes", severity=Severity.WARNING,
            summary=f"DNS errors from {', '.join(servers) or 'the resolver'}: {counts}",
            evidence=tuple(lookup_line(lk) for lk in failed[:5]),
            remedy="SERVFAIL: the resolver could not reach the authoritative servers (check its forwarders); "
            "REFUSED: an ACL or a zone the server does not serve.", verdict=Verdict.DNS_ERROR,
            data={"servers": servers, "rcodes": {r: s.rcodes.get(r, 0) for r in ("SERVFAIL", "REFUSED")}}))
    return out


def _search_amplification(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 5. search-list amplification
    if s.lookups_with_search:
        avg = s.search_queries / s.lookups_with_search
        nx_share = s.search_nxdomain / s.responses if s.responses else 0.0
        heavy = nx_share >= 0.5 and s.lookups_with_search >= 3
        out.append(Finding(
            code="capture-search-amplification", severity=Severity.WARNING if heavy else Severity.INFO,
            summary=f"{s.lookups_with_search} lookup(s) walked the search list: {avg:.1f} queries per lookup on "
            f"average, {s.search_nxdomain} NXDOMAIN answers ({nx_share:.0%} of all responses)",
            evidence=tuple(lookup_line(lk) for lk in s.lookups if len(lk.candidates) > 1)[:5],
            remedy="Use fully qualified names with a trailing dot (api.corp.example.), or lower ndots in the "
            "pod's dnsConfig (options ndots:2); CoreDNS `autopath` answers the chain in one query.",
            verdict=None, data={"lookups": s.lookups_with_search, "queries": s.search_queries,
                   "nxdomain": s.search_nxdomain}))
    return out


def _tc_not_followed(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 6. truncated answers never retried over TCP
    if s.tc_not_followed:
        out.append(Finding(
            code="capture-tc-not-followed", severity=Severity.WARNING,
            summary=f"{s.tc_not_followed} truncated (TC) answer(s) were not followed by a retry over TCP "
            f"({s.tc_followed_by_tcp} were)",
            evidence=(), remedy="The client cannot or may not use TCP: musl before 1.2.4 never retries over TCP; check "
                "that TCP 53 to the resolver is open.", verdict=None,
            data={"tc": s.tc_responses, "followed": s.tc_followed_by_tcp, "not_followed": s.tc_not_followed}))
    return out


def _evidence_quality(res: CaptureResult) -> list[Finding]:
    s = res.summary
    out: list[Finding] = []
    to = s.timeout_s
    # 7. evidence quality
    if s.malformed:
        out.append(Finding(
            code="capture-malformed", severity=Severity.INFO, summary=f"{s.malformed} packets/records could not be decoded",
            evidence=tuple(f"{m.reason}" + (f" ({m.src} -> {m.dst})" if m.src else "") for m in s.malformed_examples[:5]),
            remedy="", verdict=None, data={"malformed": s.malformed}))
    if res.kernel_drops:
        out.append(Finding(
            code="capture-kernel-drops", severity=Severity.WARNING,
            summary=f"the kernel dropped {res.kernel_drops} packets before podtriage read them: counts are lower bounds",
            evidence=(), remedy="Narrow --filter, or capture for a shorter --duration.", verdict=None,
            data={"kernel_drops": res.kernel_drops}))
    return out


# The capture's rules, in the order a reader should see their findings (each returns its
# findings, none or several). Adding one: a function above, a row here, a test.
CaptureRule = Callable[[CaptureResult], list[Finding]]
CAPTURE_RULES: tuple[CaptureRule, ...] = (
    _unanswered, _signature, _late_answers, _error_rcodes, _search_amplification,
    _tc_not_followed, _evidence_quality,
)


def _tables(res: CaptureResult) -> tuple[Table, ...]:
    s = res.summary
    servers = Table(
        "DNS servers", ("server", "transports", "queries", "responses", "unanswered", "retrans",
                        "rcodes", "p50 ms", "p95 ms", "max ms", "icmp"),
        tuple((hostport(v.server, v.port), ",".join(v.transports), str(v.queries), str(v.responses),
               str(v.unanswered), str(v.retransmissions),
               " ".join(f"{k}:{n}" for k, n in sorted(v.rcodes.items())) or "-",
               _ms(v.latency_p50_ms), _ms(v.latency_p95_ms), _ms(v.latency_max_ms),
               " ".join(f"{k}:{n}" for k, n in sorted(v.icmp.items())) or "-") for v in s.servers))
    lk = list(s.lookups)[-MAX_LOOKUP_ROWS:]
    lookups = Table(
        f"Lookups (last {len(lk)} of {s.lookups_total})",
        ("time", "client", "name", "types", "queries", "NXDOMAIN", "outcome", "ms", "process"),
        tuple(((iso(x.ts) or "")[11:23], x.client, x.base, ",".join(x.qtypes), str(x.queries), str(x.nxdomain),
               x.outcome if x.outcome != "answered" else (", ".join(x.addresses[:2]) or "answered"),
               f"{x.duration_ms:.1f}", f"{x.process.name}[{x.process.pid}]" if x.process else "-")
              for x in lk))
    totals = Table(
        "Capture", ("packets", "dns", "queries", "responses", "unanswered", "retransmissions", "malformed",
                    "rcodes"),
        ((str(res.packets), str(s.dns_messages), str(s.queries), str(s.responses), str(s.unanswered),
          str(s.retransmissions), str(s.malformed),
          " ".join(f"{k}:{n}" for k, n in sorted(s.rcodes.items())) or "-"),))
    return (totals, servers, lookups)


def _completeness(res: CaptureResult) -> list[Finding]:
    """Evidence that is incomplete must not read as healthy: a file read cut short cannot
    vouch for the rest of the file, and queries evicted by the pending cap were not watched
    to the end."""
    s = res.summary
    out: list[Finding] = []
    if res.mode == "read" and res.stopped_by != "end":
        why = "--deadline" if res.stopped_by == "deadline" else "a signal"
        out.append(Finding(
            code="capture-cut-short", severity=Severity.WARNING,
            summary=f"the read of {res.source} was cut short by {why} after {res.packets} packets: the rest of "
            f"the file was not analysed and {s.pending_at_cut} queries were still waiting for an answer "
            "(not counted as unanswered)",
            evidence=(f"read {res.packets} packets in {res.elapsed_s:.1f} s",),
            remedy="raise --deadline (or cut the file down with `editcap -A/-B` or `tcpdump -r F -w G "
            "port 53`) so the whole file is read",
            verdict=Verdict.INDETERMINATE,
            data={"stopped_by": res.stopped_by, "packets_read": res.packets, "pending_at_cut": s.pending_at_cut}))
    if res.unread:
        out.append(Finding(
            code="capture-unread", severity=Severity.WARNING,
            summary=f"{res.unread} captured packets were still queued unread when the capture stopped: the "
            "analysis fell behind the traffic, so its counts are lower bounds",
            evidence=(f"kernel: {res.kernel_packets} packets accepted by the filter, {res.kernel_drops} dropped, "
             f"{res.packets} read",),
            remedy="capture with a narrower --filter (one server, UDP only) or for a shorter --duration; "
            "`-w FILE` and a later `--read FILE` analyses every packet the writer saw", verdict=None,
            data={"unread": res.unread, "kernel_packets": res.kernel_packets, "kernel_drops": res.kernel_drops}))
    if s.evicted_pending:
        out.append(Finding(
            code="capture-pending-evicted", severity=Severity.WARNING,
            summary=f"{s.evicted_pending} queries were given up unanswered before their timeout because more than "
            f"{s.max_pending} were waiting at once (the memory cap): their count is an upper bound",
            evidence=(), remedy="a flood of unanswered queries: look at the servers below; capture a narrower --filter "
                "to follow every query", verdict=None,
            data={"evicted_pending": s.evicted_pending, "max_pending": s.max_pending}))
    return out


def capture_report(res: CaptureResult) -> Report:
    s = res.summary
    findings = _findings(res)
    default = Verdict.OK if s.dns_messages or res.mode == "live" else Verdict.INDETERMINATE
    if res.mode == "read" and not s.dns_messages:
        findings.append(Finding(code="capture-no-dns", severity=Severity.INFO,
                                summary=f"no DNS packets in {res.source} ({res.packets} packets)", evidence=(),
                                remedy="Capture on the pod's interface with `-i any` and the DNS ports "
                                "(`tcpdump -i any -w f.pcap port 53`)."))
    findings.extend(_completeness(res))
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: order[f.severity])
    verdict = derive_verdict(findings, default)
    data: dict[str, Any] = {
        "mode": res.mode,
        "source": res.source,
        "file_format": res.file_format,
        "linktypes": list(res.linktypes),
        "stopped_by": res.stopped_by,
        "elapsed_s": res.elapsed_s,
        "first_packet_at": iso(s.first_ts),
        "last_packet_at": iso(s.last_ts),
        "timeout_s": s.timeout_s,
        "packets": res.packets,
        "dns_messages": s.dns_messages,
        "queries": s.queries,
        "transactions": s.transactions,
        "responses": s.responses,
        "pairs": s.pairs,
        "unanswered": s.unanswered,
        "unanswered_explained": s.unanswered_explained,
        "retransmissions": s.retransmissions,
        "late_responses": s.late_responses,
        "unmatched_responses": s.unmatched_responses,
        "malformed": s.malformed,
        "rcodes": s.rcodes,
        "qtypes": s.qtypes,
        "transports": s.transports,
        "servers": [dict(to_jsonable(v), unanswered_unexplained=v.unanswered_unexplained) for v in s.servers],
        "lookups_total": s.lookups_total,
        "lookups": [event_dict(x) | {"line": lookup_line(x)} for x in s.lookups],
        "search": {"lookups": s.lookups_with_search, "queries": s.search_queries, "nxdomain": s.search_nxdomain},
        "truncation": {"tc_responses": s.tc_responses, "followed_by_tcp": s.tc_followed_by_tcp,
                       "not_followed": s.tc_not_followed},
        "signature": {"hits": s.signature_hits, "lost_types": s.signature_lost_types,
                      "examples": [to_jsonable(h) | {"ts": iso(h.ts)} for h in s.signature_examples]},
        "icmp_errors": s.icmp_errors,
        "icmp": [event_dict(x) for x in s.icmp_examples],
        "unanswered_examples": [event_dict(x) for x in s.unanswered_examples],
        "malformed_examples": [event_dict(x) for x in s.malformed_examples],
        "decoder": res.decoder,
        "kernel": {"packets": res.kernel_packets, "drops": res.kernel_drops, "unread": res.unread},
        "write": {"file": res.written, "packets": res.written_packets} if res.written else None,
        "filter": res.filter,
        # completeness of the evidence (issue 10): a read cut short, the pending-query cap
        "cut_short": res.mode == "read" and res.stopped_by != "end",
        "pending_at_cut": s.pending_at_cut,
        "evicted_pending": s.evicted_pending,
        "max_pending": s.max_pending,
        "unread": res.unread,
        "who_asked": {"lookups_attributed": s.lookups_attributed, "lookups": s.lookups_total,
                      **res.extra.get("who_asked", {})} if res.mode == "live" else None,
    }
    for k in ("lookups",):
        for d in data[k]:
            d.pop("event", None)
    subject = res.source
    return Report("capture", verdict, tuple(findings), data, _tables(res), subject=subject,
                  notes=res.notes)
