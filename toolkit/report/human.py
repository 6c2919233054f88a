"""The human renderer: a verdict line first, then findings, then evidence tables (rich)."""

from __future__ import annotations

from typing import TextIO

from toolkit.model import Report, Severity, Verdict

_VERDICT_STYLE = {Verdict.OK: "bold green", Verdict.INDETERMINATE: "bold yellow"}
# rich lays a table out at about 1 ms per row (measured: 20k rows in 19 s), so a hostile
# input with a million rows would keep the terminal busy for a quarter of an hour. People
# read the first rows; -o json/ndjson/markdown carry them all.
MAX_HUMAN_ROWS = 500
MAX_HUMAN_FINDINGS = 200   # each is a few console.print calls: 60k findings took 80 s
MAX_HUMAN_EVIDENCE = 50
_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.CRITICAL: "bold red"}


def render_human(report: Report, stream: TextIO) -> None:
    """The report for a terminal: verdict line, findings, evidence tables, notes."""
    from rich.console import Console
    from rich.markup import escape as _markup
    from rich.table import Table as RichTable

    from toolkit.report.sanitize import for_terminal

    def escape(text: object) -> str:
        # Untrusted text (names from the wire, config files, argv): no terminal controls,
        # no rich markup.
        return _markup(for_terminal(text))

    console = Console(file=stream, highlight=False, soft_wrap=False,
                      width=None if stream.isatty() else 120)
    style = _VERDICT_STYLE.get(report.verdict, "bold red")
    head = f"[{style}]{report.verdict.value}[/]"
    if report.confidence:
        head += f" (confidence: {report.confidence})"
    subject = f" {escape(report.subject)}" if report.subject else ""
    console.print(f"podtriage {report.command}{subject}: {head}")
    for f in report.findings[:MAX_HUMAN_FINDINGS]:
        sev = _SEVERITY_STYLE[f.severity]
        console.print(f"  [{sev}]{f.severity.value:<8}[/] [bold]{escape(f.code)}[/]: {escape(f.summary)}")
        for line in f.evidence[:MAX_HUMAN_EVIDENCE]:
            console.print(f"           - {escape(line)}")
        if len(f.evidence) > MAX_HUMAN_EVIDENCE:
            console.print(f"           - ... {len(f.evidence) - MAX_HUMAN_EVIDENCE} more")
        if f.remedy:
            console.print(f"           [green]fix:[/] {escape(f.remedy)}")
    if len(report.findings) > MAX_HUMAN_FINDINGS:
        console.print(f"  [dim]... {len(report.findings) - MAX_HUMAN_FINDINGS} more finding(s) not "
                      f"shown: -o json, ndjson or markdown list them all[/]")
    for table in report.tables:
        if not table.rows:
            continue
        rt = RichTable(title=escape(table.title), title_justify="left", show_lines=False)
        for col in table.columns:
            rt.add_column(escape(col), overflow="fold")
        for row in table.rows[:MAX_HUMAN_ROWS]:
            rt.add_row(*(escape(str(c)) for c in row))
        console.print(rt)
        if len(table.rows) > MAX_HUMAN_ROWS:
            console.print(f"[dim]... {len(table.rows) - MAX_HUMAN_ROWS} more row(s) not shown: "
                          f"-o json, ndjson or markdown list them all[/]")
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
