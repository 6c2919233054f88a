"""The partial report of a run that SIGINT or SIGTERM stopped (toolkit.signals)."""

from __future__ import annotations

from dataclasses import replace

from toolkit import signals
from toolkit.model import Finding, Report, Severity, Verdict


def mark_interrupted(report: Report) -> Report:
    """The partial report of a stopped run: a finding that says so, and never ``ok`` on
    evidence that was cut short (what would settle it: a run left to finish)."""
    sig = signals.describe()
    since = signals.stopped_for() or 0.0
    finding = Finding(
        code="interrupted", severity=Severity.WARNING,
        summary=f"{report.command} was interrupted by {sig}: the results are partial",
        evidence=(f"{sig} after {max(0.0, report.duration_ms / 1000.0 - since):.1f} s; "
                  f"the partial report was ready {since:.2f} s later",),
        remedy="run it again and let it finish (or give it a shorter --deadline): evidence that was "
        "not gathered cannot vouch for the verdict",
        verdict=Verdict.INDETERMINATE, data={"signal": sig, "exit_code": signals.exit_code()})
    verdict = Verdict.INDETERMINATE if report.verdict is Verdict.OK else report.verdict
    data = {**report.data, "interrupted": sig}
    return replace(report, verdict=verdict, findings=(finding, *report.findings), data=data,
                   notes=(*report.notes, f"interrupted by {sig}: partial results"))
