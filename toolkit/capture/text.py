"""How capture results read: times, ``host:port``, the one line per lookup, and the ndjson
event body of each streamed result. Shared by the findings (``rules``), the report and the
CLI's live output."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from toolkit.capture.decode import Malformed
from toolkit.capture.records import IcmpSeen, Lookup, LookupOutcome, Mismatch, Pair, Retransmission, Unanswered
from toolkit.model import to_jsonable

EVENT_NAMES: dict[type, str] = {Pair: "pair", Unanswered: "unanswered", Retransmission: "retransmission",
                                Malformed: "malformed", Lookup: "lookup", IcmpSeen: "icmp", Mismatch: "mismatch"}


def iso(ts: float | None) -> str | None:
    """Capture time as RFC 3339 UTC with microseconds (packets are that precise). A pcapng
    timestamp may lie past the year 9999 (64-bit units, any resolution), where RFC 3339 and
    Python's datetime stop: those get ISO 8601's expanded year (``+12345-01-01T...Z``)."""
    if ts is None:
        return None
    if -62135596800.0 <= ts < 253402300800.0:  # years 1 to 9999
        return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return _expanded(ts)


def _expanded(ts: float) -> str:
    if not math.isfinite(ts):
        return "invalid-time"
    days, secs = divmod(int(ts), 86400)
    y, m, d = _civil(days)
    hh, rest = divmod(secs, 3600)
    return f"{y:+05d}-{m:02d}-{d:02d}T{hh:02d}:{rest // 60:02d}:{rest % 60:02d}.000000Z"


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count from 1970-01-01 in the proleptic Gregorian
    calendar: 400-year eras of 146097 days, years from March (the leap day last)."""
    z = days + 719468  # days from 0000-03-01
    era, doe = divmod(z, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def clock(ts: float | None) -> str:
    """The time of day of a capture time, ``HH:MM:SS.mmm`` UTC (tables and lines)."""
    if ts is None or not math.isfinite(ts):
        return ""
    ms = int((ts % 86400.0) * 1000.0)
    hh, rest = divmod(ms, 3_600_000)
    mm, rest = divmod(rest, 60_000)
    return f"{hh:02d}:{mm:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def event_dict(obj: object) -> dict[str, Any]:  # Any: JSON values
    """One streamed analyzer result as an ndjson event body (``event`` key first)."""
    body = to_jsonable(obj)
    out: dict[str, Any] = {"event": EVENT_NAMES.get(type(obj), "result")}
    out.update(body)
    if "ts" in out:
        out["ts"] = iso(getattr(obj, "ts", None))
    return out


def hostport(addr: str, port: int) -> str:
    """``10.0.0.1:53``, ``[2620:fe::fe]:53`` (RFC 3986 3.2.2): an IPv6 address in brackets."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def lookup_line(lk: Lookup) -> str:
    """The one human line per completed lookup."""
    who = ""
    if lk.process is not None:
        who = f" {lk.process.name}[{lk.process.pid}]"
        if lk.process.library is not None:
            who += f" ({lk.process.library.label()})"
    types = ",".join(lk.qtypes)
    if lk.outcome == LookupOutcome.ANSWERED:
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
    return (f"{clock(lk.ts)} {lk.client}{who} {lk.base} {types} -> {what} in {lk.duration_ms:.1f} ms "
            f"({', '.join(extra)})")


def pair_line(p: Pair) -> str:
    """One answered query: who asked what, what came back, how long the client waited."""
    what = ", ".join(p.addresses[:4]) if p.addresses else p.rcode
    if p.malformed_answer:
        what = f"{p.rcode}, unreadable: {p.malformed_answer}"
    return (f"{clock(p.ts)} {hostport(p.client, p.client_port)} -> {hostport(p.server, p.server_port)} {p.qname} "
            f"{p.qtype}: {what} after {p.waited_ms / 1000:.2f} s ({p.sends} send(s) of the question)")


def mismatch_line(m: Mismatch) -> str:
    """One answer that carried another question than its query."""
    got = f"{m.answered} {m.answered_type}" if m.answered is not None else "no question at all"
    carried = f" -> {', '.join(m.addresses[:4])}" if m.addresses else ""
    return (f"{clock(m.ts)} {hostport(m.client, m.client_port)} asked {m.asked} {m.asked_type} (ID {m.txid}); "
            f"{hostport(m.server, m.server_port)} answered {got} {m.rcode}{carried}")
