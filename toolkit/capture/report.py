"""CaptureResult -> Report: the verdict, the findings (``rules``), tables and the JSON keys."""

from __future__ import annotations

from typing import Any

from toolkit.capture.records import CaptureMode, CaptureResult, LookupOutcome, StopReason
from toolkit.capture.rules import findings
from toolkit.capture.text import event_dict, hostport, iso, lookup_line
from toolkit.model import Report, Table, Verdict, derive_verdict, to_jsonable

MAX_LOOKUP_ROWS = 25


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def capture_report(res: CaptureResult) -> Report:
    """The capture's report: its findings and verdict, its tables, its JSON keys."""
    s = res.summary
    found = findings(res)
    default = Verdict.OK if s.dns_messages or res.mode == CaptureMode.LIVE else Verdict.INDETERMINATE
    data = {**_counts(res), **_evidence(res), **_reading(res)}
    return Report(command="capture", verdict=derive_verdict(found, default), findings=tuple(found), data=data,
                  tables=_tables(res), subject=res.source, notes=res.notes)


def _counts(res: CaptureResult) -> dict[str, Any]:  # Any: JSON values
    """The JSON keys of what was read and counted."""
    s = res.summary
    return {
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
    }


def _evidence(res: CaptureResult) -> dict[str, Any]:  # Any: JSON values
    """The JSON keys of servers, lookups and the examples kept."""
    s = res.summary
    lookups = [event_dict(x) | {"line": lookup_line(x)} for x in s.lookups]
    for d in lookups:
        d.pop("event", None)
    return {
        "servers": [dict(to_jsonable(v), unanswered_unexplained=v.unanswered_unexplained) for v in s.servers],
        "lookups_total": s.lookups_total,
        "lookups": lookups,
        "search": {"lookups": s.lookups_with_search, "queries": s.search_queries, "nxdomain": s.search_nxdomain},
        "truncation": {"tc_responses": s.tc_responses, "followed_by_tcp": s.tc_followed_by_tcp,
                       "not_followed": s.tc_not_followed},
        "signature": {"hits": s.signature_hits, "lost_types": s.signature_lost_types,
                      "examples": [to_jsonable(h) | {"ts": iso(h.ts)} for h in s.signature_examples]},
        "icmp_errors": s.icmp_errors,
        "icmp": [event_dict(x) for x in s.icmp_examples],
        "unanswered_examples": [event_dict(x) for x in s.unanswered_examples],
        "malformed_examples": [event_dict(x) for x in s.malformed_examples],
    }


def _reading(res: CaptureResult) -> dict[str, Any]:  # Any: JSON values
    """The JSON keys of how the packets were read, and how complete that is."""
    s = res.summary
    return {
        "decoder": res.decoder,
        "kernel": {"packets": res.kernel_packets, "drops": res.kernel_drops, "unread": res.unread},
        "write": {"file": res.written, "packets": res.written_packets} if res.written else None,
        "filter": res.filter,
        # completeness of the evidence (issue 10): a read cut short, the pending-query cap
        "cut_short": res.mode == CaptureMode.READ and res.stopped_by != StopReason.END,
        "pending_at_cut": s.pending_at_cut,
        "evicted_pending": s.evicted_pending,
        "max_pending": s.max_pending,
        "unread": res.unread,
        "who_asked": {"lookups_attributed": s.lookups_attributed, "lookups": s.lookups_total,
                      **res.extra.get("who_asked", {})} if res.mode == CaptureMode.LIVE else None,
    }


def _tables(res: CaptureResult) -> tuple[Table, ...]:
    """The human and Markdown tables: totals, servers, the last lookups."""
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
               str(x.outcome) if x.outcome != LookupOutcome.ANSWERED else (", ".join(x.addresses[:2]) or "answered"),
               f"{x.duration_ms:.1f}", f"{x.process.name}[{x.process.pid}]" if x.process else "-")
              for x in lk))
    totals = Table(
        "Capture", ("packets", "dns", "queries", "responses", "unanswered", "retransmissions", "malformed",
                    "rcodes"),
        ((str(res.packets), str(s.dns_messages), str(s.queries), str(s.responses), str(s.unanswered),
          str(s.retransmissions), str(s.malformed),
          " ".join(f"{k}:{n}" for k, n in sorted(s.rcodes.items())) or "-"),))
    return (totals, servers, lookups)
