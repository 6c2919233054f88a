"""Rendering under the run's deadline and its stop signals.

A report can be large (a merge of 20,000 documents, a capture of a busy node): turning it into
JSON, Markdown or a table is compute with no wait to slice, so it runs under the same bounds
as the command (issue 23 item 4): a repeating SIGALRM looks at the clock and at the stop event
of SIGINT/SIGTERM (toolkit.signals) every TICK_S, and cuts the rendering at the deadline (plus
RENDER_GRACE_S) or at a signal. The report is then rendered again trimmed (the first KEEP
items of every long list, the first KEEP findings and table rows), which is fast at any input
size, with ``output_cut`` saying what was left out.
The rendering goes to memory first, so a cut never leaves half a document on stdout.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TextIO

from toolkit import signals
from toolkit.model import Report, Table
from toolkit.report import OutputFormat, render
from toolkit.report.document import RunContext

# The promise is --deadline + 0.5 s: a cut at +0.2 s leaves the trimmed rendering its time.
RENDER_GRACE_S = 0.2
KEEP = 200          # items of each long list, findings, events kept by a trimmed rendering
KEEP_ROWS = 500     # table rows (the table renderer shows at most 500 anyway)


class RenderCut(BaseException):
    """The rendering ran out of time or was stopped. A BaseException: no ``except
    Exception`` in a library on the way may swallow it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Sink(io.StringIO):
    """Memory that answers ``isatty`` as the real stream does (the table width)."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        """As the stream the text will go to."""
        return self._tty


def render_bounded(report: Report, fmt: OutputFormat, stream: TextIO, context: RunContext | None,
                   until: float | None) -> Report:
    """Render ``report`` onto ``stream``, cut at the monotonic time ``until`` (None: no
    bound) or at SIGINT/SIGTERM; returns the report as rendered (trimmed after a cut,
    marked interrupted after a signal)."""
    tty = _isatty(stream)
    sink = _Sink(tty)
    try:
        with _bounded(until):
            render(report, fmt, sink, context)
    except RenderCut as cut:
        if signals.stopped():
            from toolkit.report.interrupted import mark_interrupted

            if "interrupted" not in report.data:
                report = mark_interrupted(report)
        report = trimmed(report, cut.reason)
        sink = _Sink(tty)
        render(report, fmt, sink, context)
    stream.write(sink.getvalue())
    return report


# How often the rendering looks at the clock and the stop event (a repeating SIGALRM).
TICK_S = 0.05


@contextmanager
def _bounded(until: float | None) -> Iterator[None]:
    """A repeating SIGALRM every TICK_S raises RenderCut once ``until`` has passed or a
    signal asked the run to stop (signals.ticking). Repeating, because the tick never raises
    inside a garbage collection (a finaliser or weakref callback would swallow it, "Exception
    ignored in ..."): the next tick raises instead; and it is disarmed before the region
    ends, so RenderCut only rises inside render_bounded's ``try``. In a thread other than the
    main one (a library caller) nothing is armed."""
    if signals.stopped():
        raise RenderCut("signal")
    if until is not None and until <= time.monotonic():
        raise RenderCut("deadline")

    def check() -> BaseException | None:
        if signals.stopped():
            return RenderCut("signal")
        if until is not None and time.monotonic() >= until:
            return RenderCut("deadline")
        return None

    with signals.ticking(TICK_S, check):
        yield


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def trimmed(report: Report, reason: str) -> Report:
    """The report with every long list cut to its first KEEP items (findings, events, the
    command's top-level lists and the lists one level inside its top-level objects) and
    every table to KEEP_ROWS rows, with ``output_cut`` saying what was cut."""
    cut: dict[str, int] = {}
    data = {key: _trim(key, value, cut, depth=0) for key, value in report.data.items()}
    if len(report.findings) > KEEP:
        cut["findings"] = len(report.findings)
    if len(report.events) > KEEP:
        cut["events"] = len(report.events)
    why = {"deadline": "the deadline", "signal": signals.describe()}.get(reason, reason)
    data["output_cut"] = {"reason": reason, "kept": KEEP, "lengths": cut}
    tables = tuple(Table(t.title, t.columns, t.rows[:KEEP_ROWS]) for t in report.tables)
    note = (f"output cut by {why} while rendering: long lists keep their first {KEEP} items "
            f"({', '.join(f'{k} had {n}' for k, n in cut.items()) or 'none was longer'}); "
            f"the verdict was reached on all of them. Give a larger --deadline for the whole output")
    return replace(report, findings=report.findings[:KEEP], events=report.events[:KEEP], data=data,
                   tables=tables, notes=(*report.notes, note))


def _trim(key: str, value: Any, cut: dict[str, int], depth: int) -> Any:  # Any: JSON-able data
    if isinstance(value, (list, tuple)):
        if len(value) > KEEP:
            cut[key] = len(value)
            return value[:KEEP]
        return value
    if isinstance(value, Mapping) and depth == 0:
        return {k: _trim(f"{key}.{k}", v, cut, depth + 1) for k, v in value.items()}
    return value
