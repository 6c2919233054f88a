"""The report model: verdicts, findings, tables and the Report every command returns.

All result objects are frozen dataclasses holding raw measurements; derived values are
properties. ``to_jsonable`` turns any of them into the JSON contract (snake_case keys,
units in key names, RFC 3339 UTC times).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1


class Verdict(str, enum.Enum):
    """The stable verdict strings of DESIGN.md. Runbooks match on these: never rename."""

    OK = "ok"
    BAD_ANSWER = "bad-answer"
    UNREACHABLE_HOST = "unreachable-host"
    PORT_CLOSED = "port-closed"
    FILTERED = "filtered"
    DNS_UNAVAILABLE = "dns-unavailable"
    DNS_ERROR = "dns-error"
    CONNTRACK = "conntrack"
    INDETERMINATE = "indeterminate"

    def __str__(self) -> str:
        return self.value


# When findings of equal severity argue for different verdicts, the earlier one here wins:
# the root cause a human should look at first.
VERDICT_PRIORITY = (
    Verdict.BAD_ANSWER,
    Verdict.DNS_UNAVAILABLE,
    Verdict.DNS_ERROR,
    Verdict.CONNTRACK,
    Verdict.UNREACHABLE_HOST,
    Verdict.FILTERED,
    Verdict.PORT_CLOSED,
    Verdict.INDETERMINATE,
    Verdict.OK,
)


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing podtriage noticed, with the evidence and what to do about it.

    ``verdict`` is the verdict this finding argues for (None: informational only).
    ``data`` carries structured evidence for runbooks (servers, addresses, line numbers).
    """

    code: str
    severity: Severity
    summary: str
    evidence: tuple[str, ...] = ()
    remedy: str = ""
    verdict: Verdict | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    """A rendered view of results for the human and Markdown renderers."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Report:
    """What every command returns to the CLI: one verdict, findings, and its own data.

    ``data`` is merged into the top level of the JSON document (the command's own keys,
    e.g. ``name``, ``candidates``, ``results``); ``events`` feed ``-o ndjson``.
    """

    command: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    tables: tuple[Table, ...] = ()
    subject: str = ""
    confidence: str | None = None
    notes: tuple[str, ...] = ()
    events: tuple[Mapping[str, Any], ...] = ()
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    duration_ms: float = 0.0

    @property
    def problem(self) -> bool:
        return self.verdict is not Verdict.OK

    def to_dict(self) -> dict[str, Any]:
        from toolkit import __version__

        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": "podtriage",
            "tool_version": __version__,
            "command": self.command,
            "generated_at": rfc3339(self.started_at),
            "duration_ms": round(self.duration_ms, 3),
            "verdict": self.verdict.value,
        }
        if self.confidence is not None:
            doc["confidence"] = self.confidence
        from toolkit.kube.context import run_context

        doc["context"] = run_context()   # {pod, namespace, node} from the kubectl plugin
        for key, value in self.data.items():
            doc[key] = to_jsonable(value)
        doc["findings"] = [to_jsonable(f) for f in self.findings]
        doc["notes"] = list(self.notes)
        return doc


def derive_verdict(findings: Iterable[Finding], default: Verdict = Verdict.OK) -> Verdict:
    """The verdict argued by the most severe finding that argues for one.

    Info findings never change the verdict; among equals, VERDICT_PRIORITY decides.
    """
    best: tuple[int, int] | None = None
    verdict = default
    for f in findings:
        if f.verdict is None or f.severity is Severity.INFO:
            continue
        key = (f.severity.rank, -VERDICT_PRIORITY.index(f.verdict))
        if best is None or key > best:
            best, verdict = key, f.verdict
    return verdict


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z suffix."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, addresses, datetimes, tuples -> plain JSON types.

    A dataclass may list derived properties in ``__json_properties__``; they are emitted
    after its fields. Fields whose name starts with ``_`` are private and skipped.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, 3)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                          ipaddress.IPv6Network)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name))
               for f in dataclasses.fields(value) if not f.name.startswith("_")}
        for prop in getattr(value, "__json_properties__", ()):
            out[prop] = to_jsonable(getattr(value, prop))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
