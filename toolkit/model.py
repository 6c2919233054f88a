"""The report model: verdicts, findings, tables and the Report every command returns.

All result objects are frozen dataclasses holding raw measurements; derived values are
properties. ``to_jsonable`` turns any of them into plain JSON values (snake_case keys, units
in key names, RFC 3339 UTC times). The model is data only: the JSON *document* a command
prints (schema version, tool, the run's context) is built in ``toolkit.report.document``.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from toolkit.errors import EXIT_INDETERMINATE, EXIT_OK, EXIT_PROBLEM


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
    """How much a finding matters; only warning and critical findings can decide a verdict."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order of severity: info 0 < warning 1 < critical 2."""
        return _SEVERITY_RANK[self]

    def __str__(self) -> str:
        return self.value


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Confidence(StrEnum):
    """How sure a verdict is (DESIGN.md "Verdicts"): graded from how much independent
    evidence agrees, never from which rule decided."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing podtriage noticed, with the evidence and what to do about it.

    ``verdict`` is the verdict this finding argues for (None: informational only).
    ``data`` carries structured evidence for runbooks (servers, line numbers...).
    ``addresses`` are the answered addresses the finding is about: the verdict engine reads
    them (toolkit.triage.classify); runbooks read them as ``data["addresses"]``, so a
    finding with addresses also carries them there, first among its data (a list, as
    always), and the JSON has them only there.
    """

    code: str
    severity: Severity
    summary: str
    evidence: tuple[str, ...] = ()
    remedy: str = ""
    verdict: Verdict | None = None
    # Any: the values are whatever JSON evidence a rule records (lists, maps, numbers);
    # to_jsonable renders them.
    data: Mapping[str, Any] = field(default_factory=dict)
    addresses: tuple[str, ...] = ()

    # The typed field is rendered inside ``data`` (the JSON contract runbooks read).
    __json_omit__ = ("addresses",)

    def __post_init__(self) -> None:
        if self.addresses:
            rest = {k: v for k, v in self.data.items() if k != "addresses"}
            object.__setattr__(self, "data", {"addresses": list(self.addresses), **rest})


@dataclass(frozen=True)
class Table:
    """A rendered view of results for the human and Markdown renderers."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, kw_only=True)
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
    confidence: Confidence | None = None
    notes: tuple[str, ...] = ()
    events: tuple[Mapping[str, Any], ...] = ()
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    duration_ms: float = 0.0

    @property
    def problem(self) -> bool:
        """Any verdict but ``ok``."""
        return self.verdict is not Verdict.OK


def verdict_exit_code(verdict: Verdict) -> int:
    """The exit code of a completed run (README "Verdicts and exit codes"): 0 for ``ok``, 5
    for ``indeterminate`` (could not tell), 1 for every verdict that names a problem."""
    if verdict is Verdict.OK:
        return EXIT_OK
    return EXIT_INDETERMINATE if verdict is Verdict.INDETERMINATE else EXIT_PROBLEM


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


def to_jsonable(value: Any) -> Any:  # Any: any result object in, any JSON value out
    """Dataclasses, enums, addresses, datetimes, tuples -> plain JSON types.

    A dataclass may list derived properties in ``__json_properties__``; they are emitted
    after its fields. Fields whose name starts with ``_`` are private and skipped, and so
    are those listed in ``__json_omit__`` (rendered elsewhere, e.g. inside ``data``).
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
        omit = getattr(value, "__json_omit__", ())
        out = {f.name: to_jsonable(getattr(value, f.name))
               for f in dataclasses.fields(value) if not f.name.startswith("_") and f.name not in omit}
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
