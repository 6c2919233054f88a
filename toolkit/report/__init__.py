"""Renderers of one Report: human (rich), json, ndjson, markdown.

Renderers only format; they never decide anything. Each takes the Report and a text
stream, so tests can render into a StringIO.
"""

from __future__ import annotations

import enum
from typing import TextIO

from toolkit.model import Report


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    markdown = "markdown"


def render(report: Report, fmt: OutputFormat, stream: TextIO) -> None:
    if fmt is OutputFormat.json:
        from toolkit.report.jsondoc import render_json

        render_json(report, stream)
    elif fmt is OutputFormat.ndjson:
        from toolkit.report.jsondoc import render_ndjson

        render_ndjson(report, stream)
    elif fmt is OutputFormat.markdown:
        from toolkit.report.markdown import render_markdown

        render_markdown(report, stream)
    else:
        from toolkit.report.human import render_human

        render_human(report, stream)
