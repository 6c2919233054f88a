"""The human renderer: a verdict line first, then findings, then evidence tables (rich).

Data reaches rich only as ``Text`` objects (never parsed as console markup) through the
sanitiser (toolkit.report.sanitize), on a console with emoji codes off: a name from the wire
such as ``[blink]x`` or ``:white_check_mark:`` is shown as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from toolkit.model import Finding, Report, Severity, Verdict

if TYPE_CHECKING:
    from rich.text import Text

_VERDICT_STYLE = {Verdict.OK: "bold green", Verdict.INDETERMINATE: "bold yellow"}
# rich lays a table out at about 1 ms per row (measured: 20k rows in 19 s), so a hostile
# input with a million rows would keep the terminal busy for a quarter of an hour. People
# read the first rows; -o json/ndjson/markdown carry them all.
MAX_HUMAN_ROWS = 500
MAX_HUMAN_FINDINGS = 200   # each is a few console.print calls: 60k findings took 80 s
MAX_HUMAN_EVIDENCE = 50
_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.CRITICAL: "bold red"}


def render_human(report: Report, stream: TextIO, check: Callable[[], None] | None = None) -> None:
    """The report for a terminal: verdict line, findings, evidence tables, notes.
    ``check`` is called between pieces (toolkit.report.budget: the deadline, a signal)."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    from toolkit.report.sanitize import for_terminal

    tick = check or (lambda: None)

    def data(text: object, style: str = "") -> Text:
        # Untrusted text (names from the wire, config files, argv): no terminal controls,
        # no invisible characters, never console markup nor an emoji code.
        return Text(for_terminal(text), style=style)

    console = Console(file=stream, highlight=False, soft_wrap=False, emoji=False, markup=False,
                      width=None if stream.isatty() else 120)
    head = Text.assemble(f"podtriage {report.command}", *((" ", data(report.subject)) if report.subject else ()),
                         ": ", (report.verdict.value, _VERDICT_STYLE.get(report.verdict, "bold red")))
    if report.confidence:
        head.append(f" (confidence: {report.confidence})")
    console.print(head)
    for f in report.findings[:MAX_HUMAN_FINDINGS]:
        tick()
        console.print(_finding(f, data))
    if len(report.findings) > MAX_HUMAN_FINDINGS:
        console.print(Text(f"  ... {len(report.findings) - MAX_HUMAN_FINDINGS} more finding(s) not shown: "
                           f"-o json, ndjson or markdown list them all", style="dim"))
    for table in report.tables:
        if not table.rows:
            continue
        rt = RichTable(title=data(table.title), title_justify="left", show_lines=False)
        for col in table.columns:
            rt.add_column(data(col), overflow="fold")
        for row in table.rows[:MAX_HUMAN_ROWS]:
            rt.add_row(*(data(c) for c in row))
        tick()
        console.print(rt)
        if len(table.rows) > MAX_HUMAN_ROWS:
            console.print(Text(f"... {len(table.rows) - MAX_HUMAN_ROWS} more row(s) not shown: "
                               f"-o json, ndjson or markdown list them all", style="dim"))
    for note in report.notes:
        console.print(Text.assemble(("note: ", "dim"), data(note, "dim")))


def _finding(f: Finding, data: Callable[..., Text]) -> Text:
    """One finding's lines: severity, code and summary, evidence, remedy."""
    from rich.text import Text

    out = Text.assemble("  ", (f"{f.severity.value:<8}", _SEVERITY_STYLE[f.severity]), " ",
                        data(f.code, "bold"), ": ", data(f.summary))
    for line in f.evidence[:MAX_HUMAN_EVIDENCE]:
        out.append("\n           - ")
        out.append_text(data(line))
    if len(f.evidence) > MAX_HUMAN_EVIDENCE:
        out.append(f"\n           - ... {len(f.evidence) - MAX_HUMAN_EVIDENCE} more")
    if f.remedy:
        out.append("\n           ")
        out.append("fix:", style="green")
        out.append(" ")
        out.append_text(data(f.remedy))
    return out
