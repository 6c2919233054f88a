"""The capture's completeness rules: what the capture could not see, or did not read, and
what that does to the verdict (``CaptureResult -> Finding | None``, in ``rules.RULES``).

Evidence that is incomplete must not read as healthy: a file read cut short cannot vouch
for the rest of the file, queries evicted by the pending cap were not watched to the end,
and a capture without a single response cannot tell a silent server from a one-way capture.
"""

from __future__ import annotations

from toolkit.capture.records import CaptureMode, CaptureResult, StopReason
from toolkit.capture.text import hostport
from toolkit.model import Finding, Severity, Verdict

ONE_WAY_REMEDY = ("capture both directions on the client's side: `podtriage capture` in the pod, or "
                  "`tcpdump -i any -w f.pcap port 53 or icmp or icmp6` (a filter such as `dst port 53`, "
                  "`-Q out`, or a one-way mirror port keeps only the queries)")


def two_way(res: CaptureResult) -> bool:
    """The capture is known to hold both directions (a silent server is then really silent)."""
    return bool(res.both_directions)


def no_responses(res: CaptureResult) -> Finding | None:
    """Queries, and not a single response in the whole capture: indeterminate unless the
    capture is known to see both directions (then each server's silence is its own finding)
    or ICMP errors explain it."""
    s = res.summary
    if s.responses or not s.transactions or s.icmp_errors or two_way(res):
        return None
    servers = [v for v in s.servers if v.transactions]
    waited = s.unanswered_reasons.get("timeout", 0)
    names = ", ".join(hostport(v.server, v.port) for v in servers[:4]) + (" ..." if len(servers) > 4 else "")
    return Finding(
        code="capture-no-responses", severity=Severity.WARNING,
        summary=f"{s.transactions} queries to {len(servers)} server(s) ({names}) and not one response in the "
        f"whole capture: either no server answered, or the capture holds one direction only",
        evidence=(f"{waited} of the {s.transactions} queries waited {s.timeout_s:g} s or more without an answer; "
                  f"the file does not say which way its frames went, so silence is not proof of a dead server",),
        remedy=ONE_WAY_REMEDY, verdict=Verdict.INDETERMINATE,
        data={"queries": s.transactions, "servers": [v.server for v in servers], "waited_timeout": waited})


def no_queries(res: CaptureResult) -> Finding | None:
    """Responses without a single query they answer: one direction only, nothing to pair."""
    s = res.summary
    if s.pairs or s.transactions or not s.responses:
        return None
    return Finding(
        code="capture-no-queries", severity=Severity.INFO,
        summary=f"{s.responses} responses and not one query: the capture holds the answers only (one direction, "
        f"or it started after the queries), so nothing can be paired or timed",
        evidence=(), remedy=ONE_WAY_REMEDY, verdict=None, data={"responses": s.responses})


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


def not_analysed(res: CaptureResult) -> Finding | None:
    """Frames whose header chain went past the decoder's bounds (IPv6 extension headers,
    nested tunnels): counted, not analysed. Indeterminate when they outnumber the DNS
    messages decoded (what was seen may not be what happened), a warning otherwise."""
    deep = {k.removeprefix("not_analysed_"): n for k, n in res.decoder.items()
            if k.startswith("not_analysed_") and n}
    if not deep:
        return None
    total = sum(deep.values())
    hidden = total >= res.summary.dns_messages
    return Finding(
        code="capture-not-analysed", severity=Severity.WARNING,
        summary=f"{total} frames were not analysed: their headers nest deeper than the decoder "
        f"follows ({', '.join(f'{k.replace(chr(95), chr(32))}: {n}' for k, n in sorted(deep.items()))}); "
        "DNS inside them is not counted",
        evidence=(f"{res.summary.dns_messages} DNS messages decoded",),
        remedy="capture where the traffic is decapsulated (the pod's interface, `-i any` on the "
        "node) rather than on the underlay",
        verdict=Verdict.INDETERMINATE if hidden else None, data={"frames": total, **deep})


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
