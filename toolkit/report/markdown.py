"""Markdown for incident tickets: verdict, findings, evidence tables."""

from __future__ import annotations

from typing import TextIO

from toolkit.model import Report, rfc3339
from toolkit.report.sanitize import md_cell as _cell
from toolkit.report.sanitize import md_code, md_text


def render_markdown(report: Report, stream: TextIO) -> None:
    """The report as a Markdown section for an incident ticket."""
    w = stream.write
    title = f"podtriage {report.command}"
    if report.subject:
        title += f" {md_code(report.subject)}"
    w(f"### {title}\n\n")
    verdict = f"**Verdict: `{report.verdict.value}`**"
    if report.confidence:
        verdict += f" (confidence: {report.confidence})"
    w(f"{verdict}  \n_{rfc3339(report.started_at)}, {report.duration_ms:.0f} ms_\n\n")
    if report.findings:
        w("#### Findings\n\n")
        for f in report.findings:
            w(f"- **{f.severity.value.upper()}** {md_code(f.code)}: {md_text(f.summary)}\n")
            for line in f.evidence:
                w(f"  - {md_text(line)}\n")
            if f.remedy:
                w(f"  - _Remedy:_ {md_text(f.remedy)}\n")
        w("\n")
    for table in report.tables:
        if not table.rows:
            continue
        w(f"#### {md_text(table.title)}\n\n")
        w("| " + " | ".join(_cell(c) for c in table.columns) + " |\n")
        w("|" + "---|" * len(table.columns) + "\n")
        for row in table.rows:
            w("| " + " | ".join(_cell(c) for c in row) + " |\n")
        w("\n")
    for note in report.notes:
        w(f"> {md_text(note)}\n")
