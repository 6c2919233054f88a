"""The two helpers every resolver-file finding is written with: ``finding`` (a Finding from
its code, severity, texts and data) and ``show`` (file text quoted safely in a summary or an
evidence line: control characters escaped, long text cut).

Shared by the resolv.conf lint, the file input checks and ``toolkit.sysinfo.hosts``.
"""

from __future__ import annotations

from collections.abc import Iterable

from toolkit.model import Finding, Severity, Verdict

MAX_FINDINGS_PER_CODE = 20        # a huge malformed file must not produce a million findings


def finding(code: str, severity: Severity, summary: str, remedy: str, *,
            evidence: Iterable[str] = (), verdict: Verdict | None = None,
            **data: object) -> Finding:
    """A Finding about a resolver file; keyword arguments beyond the named ones are its data."""
    return Finding(code=code, severity=severity, summary=summary, evidence=tuple(evidence),
                   remedy=remedy, verdict=verdict, data=data)


def show(text: str, limit: int = 120) -> str:
    """``text`` as it may be printed: repr-escaped (\\r, \\0, \\x1b...), cut after ``limit``."""
    shown = repr(text)[1:-1]
    return shown if len(shown) <= limit else shown[:limit] + "..."
