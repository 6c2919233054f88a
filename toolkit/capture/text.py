"""How capture results read: times, ``host:port``, the one line per lookup, and the ndjson
event body of each streamed result. Shared by the findings (``rules``), the report and the
CLI's live output."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from toolkit.capture.decode import Malformed
from toolkit.capture.records import IcmpSeen, Lookup, LookupOutcome, Pair, Retransmission, Unanswered
from toolkit.model import to_jsonable

EVENT_NAMES: dict[type, str] = {Pair: "pair", Unanswered: "unanswered", Retransmission: "retransmission",
                                Malformed: "malformed", Lookup: "lookup", IcmpSeen: "icmp"}


def iso(ts: float | None) -> str | None:
    """Capture time as RFC 3339 UTC with microseconds (packets are that precise)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


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
    ts = iso(lk.ts) or ""
    return (f"{ts[11:23]} {lk.client}{who} {lk.base} {types} -> {what} in {lk.duration_ms:.1f} ms "
            f"({', '.join(extra)})")
