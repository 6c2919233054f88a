"""CaptureResult -> Report: the verdict, the findings (``rules``), tables and the JSON keys.

The table and Markdown outputs read top-down as a ticket should: the verdict and the
findings first (the renderers print them before any table), then the latency histogram
(the 5-second cluster is named beside its bucket), the totals, the servers, and last the
per-lookup table (the last ``MAX_LOOKUP_ROWS``; all kept lookups with ``details``)."""

from __future__ import annotations

from typing import Any

from toolkit.capture.counters import BUCKETS
from toolkit.capture.records import (CaptureMode, CaptureResult, CaptureSummary, LookupOutcome, StopReason,
                                     bucket_of)
from toolkit.capture.rules import default_verdict, findings
from toolkit.capture.text import clock, event_dict, hostport, iso, lookup_line
from toolkit.model import Report, Table, derive_verdict, to_jsonable

MAX_LOOKUP_ROWS = 25
MAX_HISTOGRAM_SERVERS = 4  # per-server columns in the table (JSON has every server)
BAR_WIDTH = 30


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def capture_report(res: CaptureResult, *, details: bool = False) -> Report:
    """The capture's report: its findings and verdict, its tables, its JSON keys."""
    found = findings(res)
    data = {**_counts(res), **_evidence(res), **_reading(res)}
    return Report(command="capture", verdict=derive_verdict(found, default_verdict(res)), findings=tuple(found),
                  data=data, tables=_tables(res, details), subject=res.source, notes=res.notes)


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
        "unanswered_lost": s.unanswered_lost,
        "unanswered_reasons": s.unanswered_reasons,
        "retransmissions": s.retransmissions,
        "late_responses": s.late_responses,
        "unmatched_responses": s.unmatched_responses,
        "duplicate_responses": s.duplicate_responses,
        "mismatched_responses": s.mismatched_responses,
        "malformed": s.malformed,
        "malformed_answers": s.malformed_answers,
        "rcodes": s.rcodes,
        "answer_rcodes": s.answer_rcodes,
        "qtypes": s.qtypes,
        "transports": s.transports,
    }


def histogram_data(s: CaptureSummary) -> dict[str, Any]:  # Any: JSON values
    """The latency histogram as counts: every bucket, all servers and each server."""
    return {
        "buckets": [str(b) for b in BUCKETS],
        "all": s.latency_histogram,
        "servers": [{"server": v.server, "port": v.port, "counts": v.latency_histogram} for v in s.servers],
        "signature_bucket": _signature_bucket(s),
        "what": "questions, by how long the client waited for the answer from its first send (resends "
                "included); never answered: no answer at all",
    }


def _signature_bucket(s: CaptureSummary) -> str | None:
    """The bucket the 5-second signature's resends fall in (where its answers land)."""
    if not s.signature_examples:
        return None
    idx = [bucket_of(h.resent_after_s * 1000.0) for h in s.signature_examples]
    return str(BUCKETS[max(set(idx), key=idx.count)])


def _evidence(res: CaptureResult) -> dict[str, Any]:  # Any: JSON values
    """The JSON keys of servers, lookups and the examples kept."""
    s = res.summary
    lookups = [event_dict(x) | {"line": lookup_line(x)} for x in s.lookups]
    for d in lookups:
        d.pop("event", None)
    return {
        "servers": [dict(to_jsonable(v), unanswered_unexplained=v.unanswered_unexplained) for v in s.servers],
        "latency_histogram": histogram_data(s),
        "lookups_total": s.lookups_total,
        "lookup_outcomes": s.lookup_outcomes,
        "lookups": lookups,
        "search": {"lookups": s.lookups_with_search, "queries": s.search_queries, "nxdomain": s.search_nxdomain},
        "truncation": {"tc_responses": s.tc_responses, "followed_by_tcp": s.tc_followed_by_tcp,
                       "not_followed": s.tc_not_followed},
        "signature": {"hits": s.signature_hits, "lost_types": s.signature_lost_types,
                      "examples": [to_jsonable(h) | {"ts": iso(h.ts)} for h in s.signature_examples]},
        "late": {"answers": sum(s.late_rcodes.values()), "rcodes": s.late_rcodes, "min_ms": s.late_min_ms,
                 "max_ms": s.late_max_ms, "signature_resends": s.late_signature,
                 "examples": [event_dict(x) for x in s.late_examples]},
        "icmp_errors": s.icmp_errors,
        "icmp": [event_dict(x) for x in s.icmp_examples],
        "mismatches": [event_dict(x) for x in s.mismatch_examples],
        "unanswered_examples": [event_dict(x) for x in s.unanswered_examples],
        "malformed_examples": [event_dict(x) for x in s.malformed_examples],
        "malformed_answer_examples": [event_dict(x) for x in s.malformed_answer_examples],
    }


def _reading(res: CaptureResult) -> dict[str, Any]:  # Any: JSON values
    """The JSON keys of how the packets were read, and how complete that is."""
    s = res.summary
    return {
        "decoder": res.decoder,
        "kernel": {"packets": res.kernel_packets, "drops": res.kernel_drops, "unread": res.unread},
        "write": {"file": res.written, "packets": res.written_packets} if res.written else None,
        "filter": res.filter,
        "both_directions": res.both_directions,
        # completeness of the evidence (issue 10): a read cut short, the pending-query cap
        "cut_short": res.mode == CaptureMode.READ and res.stopped_by != StopReason.END,
        "pending_at_cut": s.pending_at_cut,
        "evicted_pending": s.evicted_pending,
        "max_pending": s.max_pending,
        "unread": res.unread,
        # live only: "tpacket_v3" (the ring) or "recvmsg", and why the ring was not used
        "capture_path": res.extra.get("capture_path"),
        "capture_path_reason": res.extra.get("capture_path_reason"),
        "who_asked": {"lookups_attributed": s.lookups_attributed, "lookups": s.lookups_total,
                      **res.extra.get("who_asked", {})} if res.mode == CaptureMode.LIVE else None,
    }


def _bar(n: int, top: int) -> str:
    """A bar of ``#`` proportional to ``n`` (at least one for any non-zero count)."""
    if not n or not top:
        return ""
    return "#" * max(1, round(BAR_WIDTH * n / top))


def histogram_table(s: CaptureSummary) -> Table:
    """The latency histogram as a small bar chart: all servers, then the busiest ones' counts;
    the 5-second signature named beside the bucket its resends fall in."""
    counts = [s.latency_histogram.get(str(b), 0) for b in BUCKETS]
    total = sum(counts)
    top = max(counts) if counts else 0
    servers = [v for v in s.servers if sum(v.latency_histogram.values())][:MAX_HISTOGRAM_SERVERS]
    sig = _signature_bucket(s)
    rows = []
    for b, n in zip(BUCKETS, counts, strict=True):
        note = ""
        if str(b) == sig:
            note = f"<- the 5-second signature: {s.signature_hits} resend(s) after the {s.timeout_s:g} s timeout"
        rows.append((str(b), str(n), f"{100.0 * n / total:.1f} %" if total else "-", _bar(n, top),
                     *(str(v.latency_histogram.get(str(b), 0)) for v in servers), note))
    beside = f" (all servers; the busiest {len(servers)} beside)" if servers else ""
    return Table(f"Latency: {total} question{'' if total == 1 else 's'} by how long the client "
                 f"waited{beside}",
                 ("wait", "questions", "share", "", *(hostport(v.server, v.port) for v in servers), "note"),
                 tuple(rows))


def _tables(res: CaptureResult, details: bool) -> tuple[Table, ...]:
    """The human and Markdown tables: histogram, totals, servers, the last lookups."""
    s = res.summary
    servers = Table(
        "DNS servers", ("server", "transports", "queries", "responses", "unanswered", "retrans",
                        "rcodes", "p50 ms", "p95 ms", "max ms", "icmp"),
        tuple((hostport(v.server, v.port), ",".join(v.transports), str(v.queries), str(v.responses),
               str(v.unanswered), str(v.retransmissions),
               " ".join(f"{k}:{n}" for k, n in sorted(v.rcodes.items())) or "-",
               _ms(v.latency_p50_ms), _ms(v.latency_p95_ms), _ms(v.latency_max_ms),
               " ".join(f"{k}:{n}" for k, n in sorted(v.icmp.items())) or "-") for v in s.servers))
    lk = sorted(s.lookups, key=lambda x: x.ts)
    if not details:
        lk = lk[-MAX_LOOKUP_ROWS:]
    lookups = Table(
        f"Lookups (last {len(lk)} of {s.lookups_total})",
        ("time", "client", "name", "types", "queries", "NXDOMAIN", "outcome", "ms", "process"),
        tuple((clock(x.ts), x.client, x.base, ",".join(x.qtypes), str(x.queries), str(x.nxdomain),
               str(x.outcome) if x.outcome != LookupOutcome.ANSWERED else (", ".join(x.addresses[:2]) or "answered"),
               f"{x.duration_ms:.1f}", f"{x.process.name}[{x.process.pid}]" if x.process else "-")
              for x in lk))
    totals = Table(
        "Capture", ("packets", "dns", "queries", "responses", "unanswered", "retransmissions", "malformed",
                    "rcodes"),
        ((str(res.packets), str(s.dns_messages), str(s.queries), str(s.responses), str(s.unanswered),
          str(s.retransmissions), str(s.malformed),
          " ".join(f"{k}:{n}" for k, n in sorted(s.rcodes.items())) or "-"),))
    hist = histogram_table(s)
    return ((hist,) if s.transactions else ()) + (totals, servers, lookups)
