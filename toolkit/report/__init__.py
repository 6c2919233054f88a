"""Renderers of one Report: human (rich), json, ndjson, markdown.

Renderers only format; they never decide anything. Each takes the Report and a text
stream, so tests can render into a StringIO; the JSON formats also take the run's context
(toolkit.report.document), which the CLI passes in.
"""

from __future__ import annotations

import enum
from typing import TextIO

from toolkit.model import Report
from toolkit.report.document import RunContext


class OutputFormat(str, enum.Enum):
    """The result formats of ``-o``."""

    table = "table"
    json = "json"
    ndjson = "ndjson"
    markdown = "markdown"


def render(report: Report, fmt: OutputFormat, stream: TextIO, context: RunContext | None = None) -> None:
    """Write ``report`` to ``stream`` in ``fmt``; ``context`` goes into the JSON document."""
    if fmt is OutputFormat.json:
        from toolkit.report.jsondoc import render_json

        render_json(report, stream, context)
    elif fmt is OutputFormat.ndjson:
        from toolkit.report.jsondoc import render_ndjson

        render_ndjson(report, stream, context)
    elif fmt is OutputFormat.markdown:
        from toolkit.report.markdown import render_markdown

        render_markdown(report, stream)
    else:
        from toolkit.report.human import render_human

        render_human(report, stream)
